"""Built-in PDE solvers: one module per family; the registry lives in dpot.solvers.registry."""
