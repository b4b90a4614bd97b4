"""The architecture (:class:`ModelConfig`) and how input audio becomes its waveform
(:class:`AudioConfig`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from samplernn_cli.config.rules import (
    INPUT_PANEL,
    MAX_PARAMETERS,
    MAX_TOP_FRAME,
    Settings,
    setting,
)
from samplernn_cli.errors import ConfigError

if TYPE_CHECKING:
    from samplernn_cli.model.prediction import LinearPredictor


@dataclass(frozen=True)
class ModelConfig(Settings):
    """The architecture: everything needed to rebuild the network and read its output.

    ``frame_sizes`` lists the frame tiers from the bottom up: the first entry is the bottom
    frame tier's frame in samples (the seed's ``--frame_size``); each further entry is how many
    frames of the tier below make one frame of the next tier up. ``(16,)`` is the 2-tier
    model; ``(2, 4)`` is a 3-tier model with frames of 2 and 8 samples.
    """

    what: ClassVar[str] = "model settings"
    panel: ClassVar[str] = "Model"

    # given_only: when not given, --frame-size and --preset decide.
    frame_sizes: tuple[int, ...] = setting(
        (16,), "frame_size", int, 1, 4096,
        flags=("--frame-sizes", "--frame_sizes"), given_only=True,
        help="All frame tiers, bottom up: the bottom tier's frame in samples, then for each "
        "further tier how many frames of the tier below make one of its frames. 16 is the "
        "2-tier model; 2,4 a 3-tier model with frames of 2 and 8 samples (default: {default}).",
    )  # fmt: skip
    rnn_type: str = setting("lstm", "rnn type", str, choices=("lstm", "gru"),
                            flags=("--rnn-type", "--rnn_type"),
                            help="Recurrent cell of the frame tiers.")  # fmt: skip
    rnn_layers: int = setting(5, "rnn_layers", int, 1, 64, flags=("--rnn-layers", "--rnn_layers"),
                              help="Number of stacked RNN layers in the frame tier.")  # fmt: skip
    hidden_size: int = setting(1024, "hidden_size", int, 1, 16384,
                               flags=("--hidden-size", "--hidden_size"),
                               help="Width of the RNN and MLP layers.")  # fmt: skip
    # 0: one-hot input to the sample MLP
    embed_size: int = setting(
        256, "embed_size", int, 0, 16384, flags=("--embed-size", "--embed_size"),
        help="Size of the embedding of each previous sample fed to the sample MLP; 0 feeds "
        "one-hot vectors instead.",
    )  # fmt: skip
    # Quantization levels: the model's output classes. With 2 levels silence would have no
    # code of its own.
    q_levels: int = setting(256, "quantization", int, 3, 65536, flags=("--quantization",),
                            help="Number of quantization levels (the model's output classes).",
                            panel=INPUT_PANEL)  # fmt: skip
    quantizer: str = setting(
        "linear", "quantizer", str, choices=("linear", "mu-law", "a-law"), flags=("--quantizer",),
        help="Quantization curve: linear, mu-law (mu = levels - 1) or a-law (A = 87.6).",
        panel=INPUT_PANEL,
    )  # fmt: skip
    skip_connections: bool = setting(
        False, "skip_connections", bool, flags=("--skip-connections/--no-skip-connections",),
        help="Feed each frame tier's input to every RNN layer and make the tier's output a sum "
        "of per-layer projections (Dadabots).",
        legacy=False,
    )  # fmt: skip
    weight_norm: bool = setting(
        False, "weight_norm", bool, flags=("--weight-norm/--no-weight-norm",),
        help="Weight-normalise every linear and recurrent weight (the paper).", legacy=False,
    )  # fmt: skip
    linear_prediction: int = setting(
        0, "linear_prediction", int, 0, 1024, flags=("--linear-prediction",),
        help="Order of the linear predictor whose estimate of each sample the sample MLP "
        "also reads (e.g. 256): fitted to the 16,000 samples before (a second at 16 kHz) "
        "every 256 samples (a training step's chunk must be whole such blocks), from the "
        "past alone in training and generation alike, it predicts a sustained tone from its last "
        "periods. It lowers held-out bits by up to a fifth, but the takes of some "
        "recordings come out quiet (a night's bird song: every take 20 dB below it) and a "
        "step costs a fifth more, so it is off by default. 0: off.",
        legacy=0,
    )  # fmt: skip
    learn_h0: bool = setting(
        False, "learn_h0", bool, flags=("--learn-h0/--no-learn-h0",),
        help="Learn the RNNs' initial state, used at every sequence start and at the start of "
        "generation (the paper); otherwise zeros.",
        legacy=False,
    )  # fmt: skip

    @property
    def tier_frame_samples(self) -> tuple[int, ...]:
        """Frame length in samples of each frame tier, bottom up: (16,) or (2, 8)."""
        sizes = []
        length = 1
        for ratio in self.frame_sizes:
            length *= ratio
            sizes.append(length)
        return tuple(sizes)

    @property
    def history(self) -> int:
        """Samples of context before the first target that a training window must carry."""
        frames = self.tier_frame_samples[-1]
        if not self.linear_prediction:
            return frames
        # Imported here: the settings are read where torch is not (samplernn --help).
        from samplernn_cli.model.prediction import LinearPredictor

        return max(frames, LinearPredictor.span_of(self.linear_prediction))

    @property
    def predictor(self) -> LinearPredictor | None:
        """The model's linear prediction (None: it has none)."""
        if not self.linear_prediction:
            return None
        from samplernn_cli.model.prediction import LinearPredictor

        return LinearPredictor.for_model(self.linear_prediction, self.frame_sizes[0])

    @property
    def num_tiers(self) -> int:
        """Tiers including the sample-level MLP: 2 for the seed's model."""
        return len(self.frame_sizes) + 1

    def parameter_count(self) -> int:
        """Number of trainable parameters of :class:`samplernn_cli.model.SampleRNN`."""
        hidden, q, wn = self.hidden_size, self.q_levels, self.weight_norm

        def linear(inputs: int, outputs: int, bias: bool = True) -> int:
            # weight (+ bias) (+ one norm per output unit with weight normalisation)
            return inputs * outputs + (outputs if bias else 0) + (outputs if wn else 0)

        gates = 4 if self.rnn_type == "lstm" else 3

        def rnn_layer(inputs: int) -> int:
            return linear(inputs, gates * hidden, bias=True) + linear(
                hidden, gates * hidden, bias=True
            )

        total = 0
        for frame, ratio in zip(self.tier_frame_samples, self.frame_sizes, strict=True):
            total += linear(frame, hidden)  # input expansion
            if self.skip_connections:
                total += rnn_layer(hidden) + (self.rnn_layers - 1) * rnn_layer(2 * hidden)
                total += linear(self.rnn_layers * hidden, hidden)
            else:
                total += self.rnn_layers * rnn_layer(hidden)
            total += linear(hidden, hidden * ratio)  # learned upsampling
            if self.learn_h0:
                total += (2 if self.rnn_type == "lstm" else 1) * self.rnn_layers * hidden
        width = self.embed_size if self.embed_size > 0 else q
        total += q * self.embed_size  # embedding table (none for one-hot)
        total += linear(self.frame_sizes[0] * width, hidden, bias=False)
        total += 2 * linear(hidden, hidden) + linear(hidden, q)
        if self.linear_prediction:
            total += q * hidden + linear(1, hidden, bias=False)
        return total

    def describe(self) -> str:
        """A one-line summary: '2-tier SampleRNN, LSTM 5x1024, frame 16, embed 256, ...'."""
        frames = "/".join(str(s) for s in self.tier_frame_samples)
        extras = [
            name
            for name, on in (
                ("skip connections", self.skip_connections),
                ("weight norm", self.weight_norm),
                ("learned h0", self.learn_h0),
            )
            if on
        ]
        if self.linear_prediction:
            extras.append(f"linear prediction {self.linear_prediction}")
        embed = f"embed {self.embed_size}" if self.embed_size else "one-hot input"
        return (
            f"{self.num_tiers}-tier SampleRNN, {self.rnn_type.upper()} "
            f"{self.rnn_layers}x{self.hidden_size}, frames of {frames} samples, {embed}, "
            f"{self.q_levels} {self.quantizer} levels" + "".join(f", {e}" for e in extras)
        )

    def validate(self) -> None:
        if not isinstance(self.frame_sizes, tuple) or not self.frame_sizes:
            raise ConfigError("frame sizes must be a non-empty list of whole numbers")
        super().validate()
        if self.tier_frame_samples[-1] > MAX_TOP_FRAME:
            raise ConfigError(
                f"the top tier's frame is {self.tier_frame_samples[-1]} samples long; "
                f"the product of the frame sizes must be at most {MAX_TOP_FRAME}"
            )
        count = self.parameter_count()
        if count > MAX_PARAMETERS:
            raise ConfigError(
                f"this model would have {count:,} parameters (more than {MAX_PARAMETERS:,}); "
                "lower hidden_size, rnn_layers, embed_size, frame_size or quantization"
            )


@dataclass(frozen=True)
class AudioConfig(Settings):
    """How input audio becomes the model's waveform.

    ``sample_rate`` None keeps the input file's own rate.
    """

    what: ClassVar[str] = "audio settings"
    panel: ClassVar[str] = INPUT_PANEL

    # given_only: the default holds only without --keep-sample-rate.
    sample_rate: int | None = setting(
        16000, "sample rate", int, 1_000, 384_000, optional=True,
        flags=("--sample-rate", "--sample_rate"), given_only=True,
        help="Rate in Hz the audio is resampled to and the model runs at (default: {default}).",
    )  # fmt: skip
    normalize: bool = setting(
        True, "normalize", bool, flags=("--normalize/--no-normalize",),
        help="Scale the whole file so its peak is at full scale (one gain for the whole "
        "file; never per window).",
    )  # fmt: skip
