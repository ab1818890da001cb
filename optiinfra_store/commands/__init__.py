"""What runs from a shell: the `optiinfra-store` command (`cli`), the demo (`demo`), its embedded
PostgreSQL server (`embedded`) and the plain-text reports both print (`report`)."""
