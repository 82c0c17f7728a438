"""Pydantic schema of one experiment. Every model forbids unknown keys so that a typo is an error,
not a silently ignored setting."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import (
    BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, StringConstraints, ValidationError, field_validator,
    model_validator,
)

from harmonic_nas.config.operators import BUILTIN_OPERATORS, operator_names
from harmonic_nas.layout import RunLayout

# The runtimes a LUT can be measured with (hardware/timing.py has a runner for each); onnxruntime-int8 runs
# the ONNX model after static INT8 quantization (hardware/quantize.py).
Runtime = Literal["torch", "onnxruntime", "onnxruntime-int8"]
RUNTIMES: tuple[str, ...] = get_args(Runtime)
INT8_RUNTIME = "onnxruntime-int8"
ONNX_RUNTIMES = ("onnxruntime", INT8_RUNTIME)  # the runtimes that need onnx and onnxruntime
MIN_CALIBRATION_MODELS = 6  # five folds, each fitted on at least four models (costing/validate.py)

# Names that become parts of file paths (run, LUT and supernet files): a letter or digit first, no slash,
# so that no name reaches outside the run directory (../../x). Modality names as the dataset cache has them.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
MODALITY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
DEVICE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
ModalityName = Annotated[str, StringConstraints(pattern=MODALITY_PATTERN)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitLimits(StrictModel):
    """Cap on the number of samples used per split (a fast subset for smoke runs and tests)."""

    train: PositiveInt | None = None
    val: PositiveInt | None = None
    test: PositiveInt | None = None


class DatasetConfig(StrictModel):
    name: str = Field("av-digits", description="Builtin dataset name or adapter name (avmnist, soundmnist, mmimdb, harmp).")
    path: Path | None = Field(None, description="Root folder of a user-supplied dataset (adapters only).")
    cache_dir: Path = Field(Path(".cache/harmonic-nas/data"), description="Where prepared arrays are cached.")
    options: dict[str, Any] = Field(default_factory=dict, description="Recipe options of the dataset.")
    limit: SplitLimits = Field(default_factory=SplitLimits)


class MBV3Stage(StrictModel):
    width: PositiveInt = Field(description="Output channels of the stage (before the width multiplier).")
    stride: Literal[1, 2] = 2
    se: bool = Field(False, description="Squeeze-and-excitation in every block of the stage.")
    act: Literal["relu", "hswish"] = "relu"


class MBV3Space(StrictModel):
    """Elastic MobileNetV3 for 2-D inputs (images, spectrograms)."""

    type: Literal["mbv3"] = "mbv3"
    stem_width: PositiveInt = 16
    stem_stride: Literal[1, 2] = 1
    stages: list[MBV3Stage] = Field(min_length=1)
    depths: list[PositiveInt] = Field(default_factory=lambda: [2, 3, 4], min_length=1)
    expands: list[PositiveFloat] = Field(default_factory=lambda: [3.0, 4.0, 6.0], min_length=1)
    kernels: list[PositiveInt] = Field(default_factory=lambda: [3, 5, 7], min_length=1)
    width_mult: PositiveFloat = 1.0
    head_width: PositiveInt = 256
    dropout: float = Field(0.1, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check_choices(self) -> "MBV3Space":
        for name in ("depths", "expands", "kernels"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"{name} has repeated values {values}")
        bad = [k for k in self.kernels if k % 2 == 0]
        if bad:
            raise ValueError(f"kernels must be odd, found {bad}")
        return self


class MaxoutSpace(StrictModel):
    """Elastic Maxout network for vector inputs (text embeddings)."""

    type: Literal["maxout"] = "maxout"
    hidden: list[PositiveInt] = Field(default_factory=lambda: [64, 128, 256], min_length=1,
                                      description="Units of the first block.")
    blocks: list[PositiveInt] = Field(default_factory=lambda: [1, 2, 3], min_length=1)
    pieces: list[PositiveInt] = Field(default_factory=lambda: [2, 3, 4], min_length=1,
                                      description="Linear pieces per maxout unit (the max is taken over them).")
    width_multipliers: list[PositiveFloat] = Field(
        default_factory=lambda: [1.0], min_length=1,
        description="The authors' factor_multiplier: block i has round(hidden x m^i) units.")
    dropout: float = Field(0.1, ge=0.0, lt=1.0)

    @model_validator(mode="before")
    @classmethod
    def _renamed_factors(cls, data: Any) -> Any:
        if isinstance(data, dict) and "factors" in data:
            raise ValueError("'factors' is now 'pieces' (pieces per maxout unit); the authors' factor_multiplier "
                             "(each next block's width multiplied) is 'width_multipliers'")
        return data


# The config model of every backbone family (backbones.family), told apart by ``type``.
BACKBONE_SPACES: tuple[type[StrictModel], ...] = (MBV3Space, MaxoutSpace)
BackboneSpace = Annotated[Union[BACKBONE_SPACES], Field(discriminator="type")]


# Supernet keys that the search and export read too (BN recalibration, memory format): one value for every
# modality, never in supernet.per_modality.
SHARED_SUPERNET_KEYS = ("bn_calib_samples", "channels_last")


class SupernetTraining(StrictModel):
    epochs: PositiveInt = 30
    batch_size: PositiveInt = 128
    lr: PositiveFloat = 1e-3
    min_lr: float = Field(0.0, ge=0.0)
    warmup_epochs: float = Field(
        0.0, ge=0.0, description="Linear learning-rate warm-up over this many epochs (from lr / its steps), then the "
        "cosine decay.")
    weight_decay: float = Field(1e-4, ge=0.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0, description="Label smoothing of the max subnet's loss.")
    spec_masks: int = Field(
        0, ge=0, description="SpecAugment for audio modalities: this many time and this many frequency bands of "
        "each training spectrogram set to 0 (the standardised mean); 0 turns it off.")
    spec_mask_width: float = Field(0.15, gt=0.0, le=1.0, description="Widest band of spec_masks, share of the axis.")
    random_subnets: int = Field(2, ge=0, description="N in the sandwich rule: max + min + N random subnets per step.")
    max_first_epochs: float = Field(
        0.0, ge=0.0, description="Progressive shrinking's first phase: the first this-many epochs train the max "
        "subnet alone (one pass a step, not 2 + random_subnets), then the sandwich rule trains every subnet.")
    distill: bool = Field(True, description="In-place distillation from the max subnet to the others.")
    distill_weight: float = Field(
        1.0, ge=0.0, le=1.0, description="With distill: the share of the distillation loss in a smaller subnet's "
        "loss, the rest its task loss on the labels (1: distillation alone, as the paper; a weak early teacher "
        "then holds the small subnets back).")
    patience: PositiveInt = Field(5, description="Early stopping: epochs without val improvement of the max subnet.")
    bn_calib_samples: PositiveInt = Field(2000, description="Training samples used to recalibrate BN of a subnet.")
    eval_random_subnets: int = Field(5, ge=0, description="Random subnets evaluated in the metrics JSON.")
    sort_channels_every: int = Field(1, ge=0, description="Re-sort expand channels by importance every N epochs (0: never).")
    channels_last: bool = Field(True, description="channels_last memory format for 2-D supernets (2-4x faster on CPU).")
    bf16: bool = Field(
        False,
        description="bf16 autocast (mixed precision) for the training forward passes: GPUs with bf16, CPUs with "
        "AMX/AVX512-BF16; validation stays float32.",
    )
    per_modality: dict[ModalityName, dict[str, Any]] = Field(
        default_factory=dict,
        description="Training keys set for one modality's supernet only, e.g. {audio: {epochs: 6, max_first_epochs: "
        "3}}: a modality that learns slower gets a longer schedule without slowing the others. Keys the search "
        f"reads as well ({', '.join(SHARED_SUPERNET_KEYS)}) stay one for all.",
    )

    @model_validator(mode="after")
    def _check_per_modality(self) -> "SupernetTraining":
        for modality, keys in self.per_modality.items():
            shared = sorted(set(keys) & {*SHARED_SUPERNET_KEYS, "per_modality"})
            if shared:
                raise ValueError(f"per_modality.{modality}: {', '.join(shared)} cannot differ per modality (the search "
                                 "reads it for every modality alike)")
            try:  # an unknown key or a bad value is an error now, not at training
                self.for_modality(modality)
            except ValidationError as exc:
                error = exc.errors()[0]
                where = ".".join(map(str, error["loc"]))
                raise ValueError(f"per_modality.{modality}.{where}: {error['msg']}") from None
        return self

    def for_modality(self, modality: str) -> "SupernetTraining":
        """The recipe ``modality``'s supernet trains with: these keys, then its per_modality ones."""
        keys = self.per_modality.get(modality)
        if not keys:
            return self
        return SupernetTraining.model_validate({**self.model_dump(exclude={"per_modality"}), **keys})


class SearchConfig(StrictModel):
    population: PositiveInt = 128
    generations: PositiveInt = 30
    top_fraction: float = Field(0.25, gt=0.0, le=1.0, description="Share of each modality's backbones sent to stage 2.")
    elite_fraction: float = Field(0.5, gt=0.0, le=1.0, description="Share of multimodal elites that become parents.")
    crossover_prob: float = Field(0.8, ge=0.0, le=1.0)
    mutation_prob: float = Field(0.4, ge=0.0, le=1.0)
    max_latency_ms: PositiveFloat | None = None
    max_energy_mj: PositiveFloat | None = None
    val_score_fraction: float = Field(
        0.5, gt=0.0, lt=1.0,
        description="Share of the val split held out from every choice made on val (fusion architecture steps, "
        "fine-tune epoch selection): the val metric NSGA-II ranks and the report shows is measured on it alone.",
    )


class LossExponents(StrictModel):
    task: float = Field(1.0, ge=0.0, description="a in L_task^a")
    latency: float = Field(1.0, ge=0.0, description="b in L_lat^b")
    energy: float = Field(1.0, ge=0.0, description="c in L_energy^c")


class FusionConfig(StrictModel):
    channels: PositiveInt = Field(192, description="C of every fusion input (B, C, L).")
    length: PositiveInt = Field(16, description="L of every fusion input (B, C, L); a perfect square.")
    cells: list[PositiveInt] = Field(default_factory=lambda: [1, 2, 3, 4], min_length=1)
    nodes: list[PositiveInt] = Field(default_factory=lambda: [1, 2, 3, 4], min_length=1)
    operators: list[str] = Field(
        default_factory=lambda: list(BUILTIN_OPERATORS), min_length=1,
        description="Fusion operators of the search (fusion.register_operator adds more names).",
    )
    epochs: PositiveInt = 25
    finetune_epochs: PositiveInt = 10
    batch_size: PositiveInt = 96
    lr: PositiveFloat = Field(1e-4, description="Weight learning rate of the DARTS search (the paper's).")
    finetune_lr: PositiveFloat = Field(
        1e-3,
        description="Learning rate of the derived network's fine-tune: to its warm-started weights it is a new "
        "network (no softmax scaling, no input mixtures), and a short fine-tune at the search's 1e-4 left it "
        "below the continuous search network.",
    )
    min_lr: float = Field(1e-6, ge=0.0)
    arch_lr: PositiveFloat = 3e-4
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    exponents: LossExponents = Field(default_factory=LossExponents)
    min_modalities: PositiveInt | None = Field(
        None,
        description="Modalities every derived fusion network reads, by construction (default: all modalities "
        "of the experiment). Two taps of one modality never form a cell's input pair, and the derivation "
        "covers the required modalities; 1 lifts the constraint.",
    )

    @field_validator("operators")
    @classmethod
    def _known_operators(cls, names: list[str]) -> list[str]:
        known = operator_names()
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ValueError(f"unknown fusion operator {unknown[0]!r}; known operators: {', '.join(known)} "
                             "(add one with harmonic_nas.fusion.register_operator)")
        return names

    @model_validator(mode="after")
    def _check_length(self) -> "FusionConfig":
        root = round(self.length**0.5)
        if root * root != self.length:
            raise ValueError(f"length must be a perfect square (L = s x s pooled grid), found {self.length}")
        return self


class HardwareConfig(StrictModel):
    device: str = Field("cpu", pattern=DEVICE_PATTERN,
                        description="Name of the target device; names the LUT file (letters, digits, _ . : -).")
    lut: Path | None = Field(None, description="Existing LUT to use instead of profiling.")
    runtime: Runtime = Field("torch", description="What runs the layers: torch (eager), onnxruntime, or "
                             "onnxruntime-int8 (ONNX Runtime after static INT8 quantization).")
    threads: PositiveInt = 1
    batch_size: PositiveInt = 1
    warmup: int = Field(10, ge=0)
    repeats: PositiveInt = 50
    calibrate: int = Field(
        30, ge=0, description="Random whole models measured after profiling to fit the LUT's calibration (what "
        "the per-layer sum misses: per-call overhead, cache traffic between layers); 0 = the plain sum, else >= 6.")

    @field_validator("calibrate")
    @classmethod
    def _check_calibrate(cls, n: int) -> int:
        if 0 < n < MIN_CALIBRATION_MODELS:
            raise ValueError(f"calibrate must be 0 or at least {MIN_CALIBRATION_MODELS} (a 5-fold cross-validation), "
                             f"found {n}")
        return n


class RuntimeConfig(StrictModel):
    device: str = Field("cpu", description="torch device for training: cpu, cuda, cuda:1 ...")
    threads: PositiveInt = Field(2, description="Intra-op threads per process.")
    workers: PositiveInt = Field(2, description="Evaluation worker processes.")
    feature_cache_mb: PositiveFloat = Field(
        1024.0, description="Memory bound of each process's cache of frozen-backbone features (search workers, "
        "fusion-search); the least recently used backbones are dropped beyond it.")
    seed: int = 0


class OutputConfig(StrictModel):
    runs_dir: Path = Path("runs")
    run_dir: Path | None = Field(None, description="The run directory itself (default: runs_dir/name); --out sets it.")


class ExperimentConfig(StrictModel):
    """One experiment: what data, which search spaces, how to train and search, where results go."""

    name: str = Field(pattern=NAME_PATTERN, description="Run name; the run directory is runs_dir/name.")
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    modalities: dict[ModalityName, BackboneSpace] = Field(
        min_length=1, description="Backbone search space per modality name (letters, digits, _ -).")
    supernet: SupernetTraining = Field(default_factory=SupernetTraining)
    search: SearchConfig = Field(default_factory=SearchConfig)
    fusion: FusionConfig = Field(default_factory=FusionConfig)
    hardware: HardwareConfig = Field(default_factory=HardwareConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    @model_validator(mode="after")
    def _check_modality_references(self) -> "ExperimentConfig":
        unknown = sorted(set(self.supernet.per_modality) - set(self.modalities))
        if unknown:
            raise ValueError(f"supernet.per_modality names {', '.join(unknown)}, not a modality of the experiment "
                             f"({', '.join(self.modalities)})")
        required = self.required_modalities
        if required > len(self.modalities):
            raise ValueError(f"fusion.min_modalities is {required}, but the experiment has only "
                             f"{len(self.modalities)} modalities ({', '.join(self.modalities)})")
        fewest = min(self.fusion.cells)
        if required > fewest + 1:
            raise ValueError(f"fusion.cells: a network of {fewest} cell(s) reads at most {fewest + 1} taps, fewer than "
                             f"the {required} modalities fusion.min_modalities requires (default: all); use cells >= "
                             f"{required - 1} or set fusion.min_modalities")
        return self

    @property
    def required_modalities(self) -> int:
        """How many modalities every derived fusion network reads (fusion.min_modalities, default all)."""
        return self.fusion.min_modalities or len(self.modalities)

    @property
    def run_dir(self) -> Path:
        return self.output.run_dir or self.output.runs_dir / self.name

    @property
    def layout(self) -> RunLayout:
        """The paths of the run directory."""
        return RunLayout(self.run_dir)

    @property
    def lut_path(self) -> Path:
        """The LUT the search costs with: hardware.lut, or the one `profile` writes into the run."""
        return self.layout.lut(self.hardware.device, self.hardware.lut)
