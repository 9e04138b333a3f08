print("citytwin-bench: not yet written; see BENCHMARKS.md")
