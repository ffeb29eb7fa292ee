"""teiji's scale benchmark: an emulated AWS with real latency and ECS throttling, a world of
services, the hand-written tool it replaces, and the call and time floors to compare with."""
