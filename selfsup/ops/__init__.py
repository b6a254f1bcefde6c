"""Building blocks with no knowledge of configs, data or models: schedules, the collapse statistics, and the
process-group collectives (each the identity in one process). Everything above may use them."""
