"""Training data: finding the input files (:mod:`.files`), decoding them once into the code
cache (:mod:`.cache`), splitting them into training and validation parts (:mod:`.split`) and
the schedule of sequences, batches and chunks (:mod:`.plan`).
"""
