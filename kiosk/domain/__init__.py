"""Pure rules of the bank: sizes, statuses, assignment, codes, the limiter, errors."""
