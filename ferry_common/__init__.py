"""What Ferry's server and the hypervisor's agent share: plain Python, no Django, no Ferry app.

`uris`: the libvirt URI allow-list (checked by the forms and the API, and again by the agent
where a URI is used). `logs`: the structured log format with request and job ids, for every
process. The agent (ferry_agent) may import this package and nothing else of Ferry.
"""

__version__ = "0.1.0"  # the version of every Ferry package (pyproject.toml says the same)
