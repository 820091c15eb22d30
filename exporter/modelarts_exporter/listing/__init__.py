"""Reading a project's training jobs: the source seam, one module per API generation, incremental
polls.
"""
