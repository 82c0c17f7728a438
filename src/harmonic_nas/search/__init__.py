"""Stage 1 of the method and everything around it: NSGA-II, the two-tier loop, the run store, executors."""
