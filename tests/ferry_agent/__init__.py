"""The hypervisor agent (ferry_agent/): its decisions, its checks, its client, its boundary."""
