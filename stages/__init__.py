"""Pipeline stages: one module per stage, each with a `run()` of plain values and a thin `main()`."""
