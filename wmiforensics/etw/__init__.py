"""ETW state in kernel memory: silo driver states, logger contexts, providers and tamper checks."""
