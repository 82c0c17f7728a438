"""The job as functions, one per step: prepare the data, train the supernets, profile the device into a
LUT, search, write the report, export the models; plus the whole job (``run``) and the two single-model
tools (``fusion_search``, ``reproduce``).

Every ``harmonic-nas`` command calls one of these in a line or two and shows what it returns; a script or
notebook calls them the same way. Each takes the experiment config (``config.load_config``), writes into
its run directory while holding the run's lock, and takes keyword arguments only beyond that: an in-memory
``dataset`` instead of the config's (tests, notebooks), ``log`` for its one-line narration (default: the
console), and progress callbacks where the command line shows progress.
"""

from harmonic_nas.pipeline.job import RunResult, run
from harmonic_nas.pipeline.outputs import export_front, export_model, report
from harmonic_nas.pipeline.profiling import ProfileResult, dataset_shapes, profile
from harmonic_nas.pipeline.searching import SearchResult, search, stored_config
from harmonic_nas.pipeline.single import FusionSearchResult, ReproduceResult, fusion_search, read_candidate, reproduce
from harmonic_nas.pipeline.training import prepare, train_supernets

__all__ = [
    "FusionSearchResult", "ProfileResult", "ReproduceResult", "RunResult", "SearchResult", "dataset_shapes",
    "export_front", "export_model", "fusion_search", "prepare", "profile", "read_candidate", "report",
    "reproduce", "run", "search", "stored_config", "train_supernets",
]
