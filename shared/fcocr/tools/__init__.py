"""Operator tools: the ``fcocr`` command and what only it uses (backfill, packaging, the sample generator,
console widgets). Nothing in the deployed functions imports this package, and ``fcocr package`` leaves it
out of the Function Compute zips."""
