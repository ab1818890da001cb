"""Analytics rules without SQL: the performance tips' thresholds (`tips`) and the mergeable
duration sketch's quantiles (`sketch`)."""
