"""The one Definitions of the code location: every recipe of `recipes/` (or `$SLUICE_RECIPES`) becomes an asset
group, a job, a shard sensor and, if it has a `schedule:` section, a schedule. Built by `pipeline_defs.loader`;
a recipe that does not load is logged and left out, so one bad file never takes the location down.
Loading it in a process with an instance (`$DAGSTER_HOME`: the webserver, the daemon) sets every recipe's step
pool limits on that instance, so runs launched from the UI are limited like `sluice run`'s."""

from pipeline_defs.loader import apply_recipe_pool_limits, definitions_for, loadable, recipe_paths

_paths = loadable(recipe_paths())
defs = definitions_for(_paths)
pool_limits = apply_recipe_pool_limits(_paths)
