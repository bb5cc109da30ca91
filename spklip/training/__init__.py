"""Training SPKLIP (the loop, DDP, resume) and few-shot adaptation; imports the library and
``spklip.evaluation``, never the other way round."""
