"""Words of a migration plan that the server and the agent both read: one definition of each.

The convergence schedule's actions (a policy's steps; the agent runs them on libvirt).
"""

SET_DOWNTIME = "setDowntime"
POSTCOPY = "postcopy"
ABORT = "abort"
CONVERGENCE_ACTIONS = (SET_DOWNTIME, POSTCOPY, ABORT)
