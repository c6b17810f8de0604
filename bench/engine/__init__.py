"""Running: the plan, its cells (fit, threshold, score), the executors (local, Ray), the run
directory, provenance and cost records.
"""
