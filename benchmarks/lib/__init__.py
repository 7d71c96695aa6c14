"""What the benchmark scripts share: the machine's description, tables and JSON
(:mod:`lib._common`), the tuning tasks (:mod:`lib.tasks`) and the optimizers compared
(:mod:`lib.peers`)."""
