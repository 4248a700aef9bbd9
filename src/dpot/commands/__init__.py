"""One module per `dpot` sub-command: `add_arguments(parser)` and `run(args)`; heavy imports stay inside `run`."""
