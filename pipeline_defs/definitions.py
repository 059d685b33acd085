"""The one Definitions of the code location: every recipe of `recipes/` (or `$SLUICE_RECIPES`) becomes an asset
group, a job, a shard sensor and, if it has a `schedule:` section, a schedule. Built by `pipeline_defs.loader`;
a recipe that does not load is logged and left out, so one bad file never takes the location down."""

from pipeline_defs.loader import definitions_for, loadable, recipe_paths

defs = definitions_for(loadable(recipe_paths()))
