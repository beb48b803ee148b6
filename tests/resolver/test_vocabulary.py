"""One source for the resolver's vocabulary: every way in reads the same codes and actions."""

from drf_spectacular.generators import SchemaGenerator

from ferry_agent import virt
from ferry_common.vocabulary import CONVERGENCE_ACTIONS
from migrations_app.resolver import DECISION_REASONS, DecisionCode
from policies import convergence


def test_the_decision_codes_are_the_registrys_and_the_schema_offers_exactly_them():
    assert [code.value for code in DecisionCode] == list(DECISION_REASONS)
    schema = SchemaGenerator().get_schema(request=None, public=True)
    enums = [
        component["enum"]
        for component in schema["components"]["schemas"].values()
        if "enum" in component and set(component["enum"]) & {"parallel_enforced"}
    ]
    assert enums and all(set(enum) - {"", None} == set(DECISION_REASONS) for enum in enums), enums


def test_the_convergence_actions_are_one_list_for_policies_the_agent_and_the_api():
    from migrations_app.api.serializers import PlanActionSerializer

    assert convergence.ACTIONS == virt.SCHEDULE_ACTIONS == CONVERGENCE_ACTIONS
    assert list(PlanActionSerializer().fields["name"].choices) == list(CONVERGENCE_ACTIONS)
