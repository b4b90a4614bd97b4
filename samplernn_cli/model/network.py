"""SampleRNN (Mehri et al., arXiv 1612.07837) built from a :class:`ModelConfig`.

Tiers, from the top down:

* frame tiers, one per entry of ``frame_sizes``: each reads the previous frame of its own
  length (codes scaled to [-2, 2]), adds the conditioning vector from the tier above, runs an
  RNN (LSTM or GRU, any number of layers) once per frame, and projects each RNN output to one
  conditioning vector per frame of the tier below (learned upsampling, the paper's
  per-position linear maps);
* the sample tier, an MLP run once per sample: the previous ``frame_size`` codes (embedded, or
  one-hot when ``embed_size`` is 0) through a first linear layer, plus the conditioning vector
  for this sample (and, with linear prediction, the fitted linear predictor's estimate of
  the sample: :mod:`samplernn_cli.model.prediction`), then two hidden layers with ReLU and an
  output layer over the levels.

Options from the paper and the Dadabots fork: skip connections (the frame input is fed to
every RNN layer and the tier's output is a sum of per-layer projections), weight
normalisation of every linear and recurrent weight, and a learned initial RNN state used at
every sequence start and at the start of generation.

The MLP's first layer only ever sees ``frame_size`` discrete codes, so it equals a sum of
``frame_size`` rows gathered from per-position tables (levels x hidden). Training and
generation both use that form (:meth:`SampleTier.input_tables`): the same numbers as
concatenating embeddings and multiplying, without the (batch, time, frame_size x embed_size)
activation, and with a gather instead of the largest matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

from samplernn_cli.config import ModelConfig
from samplernn_cli.model.tables import table_sum
from samplernn_cli.quantize import Quantizer
from samplernn_cli.seeding import mix_seed


@dataclass(frozen=True)
class StepDraws:
    """Where the random draws of one training step (frame dropout's masks, the prediction's
    noise) come from: a generator seeded with ``seed`` draws each for a batch of ``batch``
    rows, of which this process keeps ``rows``; :meth:`tier` and :meth:`noise` give each
    draw its own stream. Passed with the step's forward pass: a pass in training mode that
    needs draws and has none is an error, never a silent fallback."""

    seed: int
    rows: slice
    batch: int

    def tier(self, index: int) -> StepDraws:
        """Frame tier ``index``'s dropout mask."""
        return StepDraws(mix_seed(self.seed, index), self.rows, self.batch)

    def noise(self, tiers: int) -> StepDraws:
        """The prediction's noise (its stream follows the ``tiers`` masks')."""
        return StepDraws(mix_seed(self.seed, tiers), self.rows, self.batch)


# One tier's recurrent state: (h, c) for an LSTM, (h,) for a GRU; each (layers, batch, hidden).
TierState = tuple[torch.Tensor, ...]
# The whole model's state: one entry per frame tier, bottom up; None means "reset".
ModelState = list[TierState | None]


class FrameTier(nn.Module):
    """A frame-level tier: one RNN step per frame of ``frame_samples`` samples."""

    def __init__(
        self,
        frame_samples: int,
        ratio: int,
        hidden_size: int,
        rnn_type: str,
        rnn_layers: int,
        *,
        skip_connections: bool = False,
        learn_h0: bool = False,
    ) -> None:
        super().__init__()
        self.frame_samples = frame_samples
        self.ratio = ratio
        self.hidden_size = hidden_size
        self.rnn_type = rnn_type
        self.rnn_layers = rnn_layers
        self.skip_connections = skip_connections
        # Dropout on the RNN's per-frame outputs while training (see SampleRNN.set_dropout).
        self.dropout = 0.0
        self.input = nn.Linear(frame_samples, hidden_size)
        rnn_class = nn.LSTM if rnn_type == "lstm" else nn.GRU
        if skip_connections:
            # Layer 0 reads the tier input; layer l > 0 reads it next to layer l - 1's output.
            self.rnns = nn.ModuleList(
                rnn_class(hidden_size * (1 if layer == 0 else 2), hidden_size, batch_first=True)
                for layer in range(rnn_layers)
            )
            # One projection of all layers' outputs: the sum of per-layer projections.
            self.skip_output = nn.Linear(hidden_size * rnn_layers, hidden_size)
        else:
            self.rnn = rnn_class(hidden_size, hidden_size, num_layers=rnn_layers, batch_first=True)
        self.upsample = nn.Linear(hidden_size, hidden_size * ratio)
        if learn_h0:
            parts = 2 if rnn_type == "lstm" else 1
            self.h0 = nn.Parameter(torch.zeros(parts, rnn_layers, 1, hidden_size))
        else:
            self.register_parameter("h0", None)

    def initial_state(self, batch: int) -> TierState | None:
        """The learned initial state for ``batch`` sequences, or None (zeros)."""
        if self.h0 is None:
            return None
        return tuple(part.expand(-1, batch, -1).contiguous() for part in self.h0)

    def _run_rnn(self, x: torch.Tensor, state: TierState | None) -> tuple[torch.Tensor, TierState]:
        lstm = self.rnn_type == "lstm"
        if not self.skip_connections:
            if lstm:
                out, (h, c) = self.rnn(x, state)
                return out, (h, c)
            out, h = self.rnn(x, None if state is None else state[0])
            return out, (h,)
        outputs, finals = [], []
        layer_input = x
        for layer, rnn in enumerate(self.rnns):
            layer_state = None if state is None else tuple(s[layer : layer + 1] for s in state)
            if lstm:
                out, (h, c) = rnn(layer_input, layer_state)
                finals.append((h, c))
            else:
                out, h = rnn(layer_input, None if layer_state is None else layer_state[0])
                finals.append((h,))
            outputs.append(out)
            layer_input = torch.cat([x, out], dim=-1)
        new_state = tuple(torch.cat(parts, dim=0) for parts in zip(*finals, strict=True))
        return self.skip_output(torch.cat(outputs, dim=-1)), new_state

    def forward(
        self,
        frames: torch.Tensor,
        conditioning: torch.Tensor | None,
        state: TierState | None,
        draw: StepDraws | None = None,
        upsample: bool = True,
    ) -> tuple[torch.Tensor, TierState]:
        """Run over a sequence of frames.

        Args:
            frames: (B, F, frame_samples) scaled codes of the frame *before* each step's frame.
            conditioning: (B, F, H) from the tier above, or None for the top tier.
            state: this tier's RNN state, or None at a sequence start (the learned initial
                state, or zeros).
            draw: where this step's dropout mask comes from (needed in training mode with
                dropout).
            upsample: False stops before the upsampling (see returns).

        Returns:
            (B, F * ratio, H): one conditioning vector per frame (or sample) of the tier
            below (with ``upsample=False``, (B, F, H): one vector per frame, which
            :meth:`upsample_frames` turns into the former), and the new state.
        """
        x = self.input(frames)
        if conditioning is not None:
            x = x + conditioning
        if state is None:
            state = self.initial_state(frames.shape[0])
        out, new_state = self._run_rnn(x, state)
        if self.dropout > 0 and self.training:
            if draw is None:
                raise ValueError("a training pass with frame dropout needs the step's draws")
            out = self._drop(out, draw)
        return (self.upsample_frames(out) if upsample else out), new_state

    def _drop(self, out: torch.Tensor, draw: StepDraws) -> torch.Tensor:
        """``out`` with frame dropout, its mask from ``draw``."""
        # Drawn for the whole batch and cut to this process's rows, so that the processes
        # of a distributed run drop what one process would (F.dropout cannot: each process
        # has its own random stream).
        shape = (draw.batch, *out.shape[1:])
        on_device = out.device.type in ("cpu", "cuda")
        generator = torch.Generator(device=out.device if on_device else "cpu")
        generator.manual_seed(draw.seed)
        uniform = torch.rand(shape, generator=generator, device=generator.device)
        keep = (uniform[draw.rows] >= self.dropout).to(out.device, out.dtype)
        return out * keep / (1.0 - self.dropout)

    def upsample_frames(self, features: torch.Tensor) -> torch.Tensor:
        """(B, F, H) per-frame vectors -> (B, F * ratio, H) conditioning for the tier below."""
        batch, num_frames, _ = features.shape
        up = self.upsample(features)  # (B, F, ratio * H)
        return up.reshape(batch, num_frames * self.ratio, self.hidden_size)


class SampleTier(nn.Module):
    """The sample-level MLP: previous ``frame_size`` codes + conditioning -> logits."""

    def __init__(
        self,
        frame_size: int,
        q_levels: int,
        embed_size: int,
        hidden_size: int,
        *,
        prediction_order: int = 0,
        zero_code: int = 0,
    ) -> None:
        super().__init__()
        self.frame_size = frame_size
        self.q_levels = q_levels
        self.zero_code = zero_code
        # embed_size 0: one-hot input, i.e. the first layer's weights are the tables.
        self.embedding = nn.Embedding(q_levels, embed_size) if embed_size > 0 else None
        width = embed_size if embed_size > 0 else q_levels
        # Applied to the concatenated embeddings (or one-hots) of the previous frame_size
        # codes; the conditioning vector plays the role of its bias.
        self.input = nn.Linear(frame_size * width, hidden_size, bias=False)
        self.hidden = nn.ModuleList([nn.Linear(hidden_size, hidden_size) for _ in range(2)])
        self.output = nn.Linear(hidden_size, q_levels)
        # The linear prediction's input (model/prediction.py), added to the first layer's
        # output like the conditioning: a row for the level nearest the prediction, plus the
        # prediction's distance from that level times a learned vector.
        self.prediction_table: nn.Embedding | None = None
        self.prediction_distance: nn.Linear | None = None
        if prediction_order:
            self.prediction_table = nn.Embedding(q_levels, hidden_size)
            nn.init.normal_(self.prediction_table.weight, std=0.02)
            self.prediction_distance = nn.Linear(1, hidden_size, bias=False)

    def input_tables(self) -> torch.Tensor:
        """(frame_size * levels, H): row ``p * levels + c`` is the first layer's output for
        code ``c`` at position ``p`` of the previous frame."""
        hidden = self.input.out_features
        weight = self.input.weight.view(hidden, self.frame_size, -1)  # (H, FS, E or Q)
        if self.embedding is None:
            tables = weight.permute(1, 2, 0)  # (FS, Q, H)
        else:
            tables = torch.einsum("qe,hpe->pqh", self.embedding.weight, weight)  # (FS, Q, H)
        return tables.reshape(self.frame_size * self.q_levels, hidden)

    def first_layer(
        self,
        previous: torch.Tensor,
        tables: torch.Tensor,
        prediction: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(..., FS) codes -> (..., H): the sum of one table row per position, plus (with
        linear prediction) the input of each target's (...) prediction. Every path that
        computes the sample tier (the forward pass, the training step, the torch sampler)
        calls this; the compiled sampler's kernel is the one other copy, tested against it."""
        x = table_sum(previous, tables, self.q_levels)
        if prediction is not None:
            x = x + self.prediction_input(prediction)
        return x

    def prediction_input(self, predicted: torch.Tensor) -> torch.Tensor:
        """(...) linear predictions, in levels from the zero code -> (..., H)."""
        assert self.prediction_table is not None and self.prediction_distance is not None
        nearest = predicted.round()
        codes = (nearest + self.zero_code).clamp(0, self.q_levels - 1).long()
        distance = self.prediction_distance((predicted - nearest).unsqueeze(-1))
        return self.prediction_table(codes) + distance

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """First-layer output plus conditioning (..., H) -> logits (..., levels)."""
        shape = x.shape
        # Two-dimensional (autograd copies what an in-place ReLU changes in the views a
        # linear layer returns for more dimensions), and ReLU in place on each layer's
        # output, a fresh tensor no backward pass reads.
        x = F.relu(x.reshape(-1, shape[-1]))
        for layer in self.hidden:
            x = F.relu(layer(x), inplace=True)
        return self.output(x).view(*shape[:-1], -1)

    def forward(
        self,
        previous: torch.Tensor,
        conditioning: torch.Tensor,
        tables: torch.Tensor | None = None,
        prediction: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, L, FS) previous codes and (B, L, H) conditioning (and, with linear
        prediction, each target's (B, L) prediction) -> (B, L, levels) logits."""
        if tables is None:
            tables = self.input_tables()
        return self.head(self.first_layer(previous, tables, prediction) + conditioning)


def apply_weight_norm(module: nn.Module) -> None:
    """Weight-normalise every linear and recurrent weight matrix (one norm per output unit)."""
    for child in list(module.modules()):
        if isinstance(child, nn.Linear):
            parametrizations.weight_norm(child, name="weight")
        elif isinstance(child, nn.RNNBase):
            for name, _ in list(child.named_parameters(recurse=False)):
                if name.startswith("weight_"):
                    parametrizations.weight_norm(child, name=name)


class SampleRNN(nn.Module):
    """The whole model. ``frame_tiers[0]`` is the bottom frame tier."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.quantizer = Quantizer(config.quantizer, config.q_levels)
        frames = config.tier_frame_samples
        self.frame_tiers = nn.ModuleList(
            FrameTier(
                frames[k],
                config.frame_sizes[k],
                config.hidden_size,
                config.rnn_type,
                config.rnn_layers,
                skip_connections=config.skip_connections,
                learn_h0=config.learn_h0,
            )
            for k in range(len(frames))
        )
        self.sample_tier = SampleTier(
            config.frame_sizes[0], config.q_levels, config.embed_size, config.hidden_size,
            prediction_order=config.linear_prediction, zero_code=self.quantizer.zero_code,
        )  # fmt: skip
        # The linear prediction (model/prediction.py), None without it, and the noise on
        # the past it reads while training.
        self.predictor = config.predictor
        self.prediction_noise = 0.0
        if config.weight_norm:
            apply_weight_norm(self)

    @property
    def history(self) -> int:
        return self.config.history

    def set_dropout(self, p: float) -> None:
        """Drop each frame tier's per-frame RNN outputs with probability ``p`` in training
        mode (the kept ones scaled by 1 / (1 - p); none in eval mode). A training setting
        (TrainConfig.frame_dropout), not part of the architecture: no weights change."""
        for tier in self.frame_tiers:
            tier.dropout = p

    def set_prediction_noise(self, relative: float) -> None:
        """In training mode, add Gaussian noise to the past that the linear prediction reads,
        ``relative`` times the level (RMS) of each row's context (TrainConfig.prediction_noise):
        generation predicts from the model's own samples, never quite the recording's."""
        self.prediction_noise = relative

    def prediction(
        self, window: torch.Tensor, draws: StepDraws | None = None
    ) -> torch.Tensor | None:
        """(B, L) linear predictions of the targets of ``window`` (B, history + L) from the
        samples before each; None without linear prediction. In training mode with
        prediction noise, predicted from a noisy copy of the window (its noise from
        ``draws``, which such a pass needs)."""
        if self.predictor is None:
            return None
        history = self.history
        signal = (window - self.quantizer.zero_code).double()
        if self.training and self.prediction_noise > 0:
            if draws is None:
                raise ValueError("a training pass with prediction noise needs the step's draws")
            draw = draws.noise(len(self.frame_tiers))
            generator = torch.Generator().manual_seed(draw.seed)
            shape = (draw.batch, signal.shape[1])
            noise = torch.randn(shape, generator=generator, dtype=torch.float64)[draw.rows]
            level = signal[:, :history].square().mean(1, keepdim=True).sqrt()
            signal = signal + self.prediction_noise * level * noise.to(signal.device)
        length = window.shape[1] - history
        return self.predictor.predict(signal, history, length)

    def initial_state(self) -> ModelState:
        return [None] * len(self.frame_tiers)

    def frame_tiers_pass(
        self,
        window: torch.Tensor,
        state: ModelState | None = None,
        *,
        upsample: bool = True,
        draws: StepDraws | None = None,
    ) -> tuple[torch.Tensor, ModelState]:
        """Run only the frame tiers over a chunk (teacher forcing).

        Args:
            window: (B, history + L) codes, as for :meth:`forward`.
            state: the frame tiers' state, or None at the start of a sequence.
            upsample: False stops before the bottom tier's upsampling (see returns).
            draws: the training step's draws (its dropout masks).

        Returns:
            (B, L, H): the bottom tier's conditioning vector for each target (with
            ``upsample=False``, (B, L / frame_size, H): the bottom tier's vector for each
            frame, which ``frame_tiers[0].upsample_frames`` turns into the former), and the
            state after the chunk.
        """
        history = self.history
        batch = window.shape[0]
        length = window.shape[1] - history
        if state is None:
            state = self.initial_state()
        new_state: ModelState = [None] * len(self.frame_tiers)
        conditioning = None
        for k in reversed(range(len(self.frame_tiers))):
            tier = self.frame_tiers[k]
            size = tier.frame_samples
            # (B, L / size, size): for each frame of this tier, the frame before it.
            frames = window[:, history - size : history + length - size]
            frames = self.quantizer.scale_codes(frames).view(batch, length // size, size)
            draw = None if draws is None else draws.tier(k)
            conditioning, new_state[k] = tier(
                frames, conditioning, state[k], draw, k > 0 or upsample
            )
        assert conditioning is not None  # there is always at least one frame tier
        return conditioning, new_state

    def forward(
        self,
        window: torch.Tensor,
        state: ModelState | None = None,
        draws: StepDraws | None = None,
    ) -> tuple[torch.Tensor, ModelState]:
        """Teacher-forced logits for a chunk.

        Args:
            window: (B, history + L) codes: ``history`` samples of context, then the L target
                samples. L must be a multiple of the top tier's frame length. The last code is
                only a target; it is never an input.
            state: the frame tiers' state from the previous chunk of the same sequences, or
                None at the start of a sequence.
            draws: the training step's random draws (needed in training mode with frame
                dropout or prediction noise).

        Returns:
            (B, L, levels) logits for the L targets, and the state after the chunk.
        """
        conditioning, new_state = self.frame_tiers_pass(window, state, draws=draws)
        history, frame_size = self.history, self.sample_tier.frame_size
        # (B, L, FS): the frame_size codes before each target (a view, not a copy).
        previous = window[:, history - frame_size : -1].unfold(1, frame_size, 1)
        return self.sample_tier(
            previous, conditioning, prediction=self.prediction(window, draws)
        ), new_state


def detach_state(state: ModelState) -> ModelState:
    """Cut the graph between truncated-BPTT chunks, keeping the values."""
    return [None if s is None else tuple(t.detach() for t in s) for s in state]
