"""The one Definitions of the code location: every recipe of `recipes/` (or `$SLUICE_RECIPES`) becomes an asset
group, a job and a shard sensor. Built by `pipeline_defs.loader`."""

from pipeline_defs.loader import definitions_for, recipe_paths

defs = definitions_for(recipe_paths())
