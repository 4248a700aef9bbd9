"""The demo plan the tests run: a spent budget, so pre-training calibrates then trains `min_steps` and the
fine-tuning runs hit their hard time limit (seconds, not 15 minutes)."""

TINY_DEMO = [
    "preset=tiny",
    "holdout=ns2d_nu1e-5",
    "pretrain_config=tiny",
    "budget_seconds=0",
    "eval_reserve_seconds=0",
    "min_steps=2",
    "calibration_steps=3",
    "n_trajectories=2",
    "eval_trajectories=1",
    "rollout=2",
    "progress=false",
    "fno.modes=4",
    "fno.width=8",
    "fno.n_layers=2",
]
