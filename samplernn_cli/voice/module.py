"""The live voice: a TorchScript module that a live host (nn~ in Max/MSP and Pure Data, or
``samplernn_cli/voice/host``) calls once per audio buffer for the next samples of an endless
take.

What it answers to (nn~'s contract, the same in Max and Pd):

* ``get_methods()`` lists ``forward``; the buffer ``forward_params`` is ``[in channels, in
  ratio, out channels, out ratio]`` = ``[2, 1, 1, 1]``; ``forward_input_labels`` and
  ``forward_output_labels`` name the channels.
* ``forward(x)``: float32 (B, 2, N), a temperature offset and audio to listen to per host
  sample, gives float32 (B, 1, N): the next N samples at the host's rate. It never raises:
  input it cannot use (a wrong shape, a rate it was refused) gives silence, and a missing
  second channel reads as silence.
* ``get_attributes()`` lists ``temperature``, ``seed``, ``gain``, ``reset``, ``listen`` and
  ``quiet_boost`` (``samplernn generate --quiet-boost``: a take whose last quarter second,
  or last second, has fallen far below the training audio's level is sampled hotter until
  it sounds);
  each has a buffer ``A_params`` of nn~'s type ids (bool 0, int 1, float 2), a getter
  returning a list and a setter returning 0, or -1 when the value is refused (and the value
  is then unchanged).
* ``set_sample_rate(rate)``, which nn~ calls at load with the host's rate: integer multiples
  of the model's rate (up to :data:`MAX_RATIO`) are made by an interpolating filter kept in
  the module; other rates are refused with a printed line, and ``forward`` is silent.

While ``listen`` is on, the voice is silent and takes each frame's codes from the second
input (low-passed, every ratio-th sample kept, encoded by the model's quantizer), a frame
late, and its frame tiers run over them; when it goes off, the take goes on from what it
heard, as ``samplernn generate --prime`` goes on from a prime.

All state between calls (the codes heard so far, every tier's recurrent state and
conditioning, the filter's past, the samples made but not yet handed out, the position in the
random stream) lives in registered buffers, changed in place during a take and made afresh
by a reset. ``forward`` runs under ``c10::InferenceMode`` and the setters outside it: a
setter only records what it was given, and a reset it asks for happens inside the next
``forward``, as msprior's does, so the state is only ever touched in the mode ``forward``
runs in (a caller that switches modes gets the state copied into the new one).

Samples are made a top-tier frame (a "chunk") at a time, so a call's buffer length never
changes what is computed: the same seed and settings give the same samples, bit for bit,
however the host cuts its buffers. The temperature offset of a chunk is the input's value at
the host sample where that chunk's audio begins; that sample is always inside the call that
makes the chunk.

Randomness is counter-based (:func:`samplernn_cli.voice.dsp.gumbel_noise`). Each sample is
drawn by the Gumbel-max rule, ``argmax(logits / T + G)``, which draws from
``softmax(logits / T)`` exactly as ``samplernn generate``'s inversion of the cumulative
distribution does, with fewer operations per sample.

No ``from __future__ import annotations`` here: TorchScript reads the annotations.
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from samplernn_cli.generation.quiet import QuietWatch
from samplernn_cli.voice.dsp import (
    FILTER_BETA,
    FILTER_ROLLOFF,
    FILTER_ZEROS,
    MAX_RATIO,
    decimation_filter,
    gumbel_noise,
    interpolation_filter,
)
from samplernn_cli.voice.tiers import FrameTierVoice, RecurrentLayer, SampleTierVoice

__all__ = [
    "MAX_RATIO",
    "FrameTierVoice",
    "LiveVoice",
    "RecurrentLayer",
    "SampleTierVoice",
    "interpolation_filter",
]


class VoiceControls(nn.Module):
    """What nn~ reads and sets besides the audio: the method's description, the attributes
    (temperature, seed, gain, reset, listen) with their type ids, getters and setters, and
    the host's sample rate. A setter records a value (or a reset to apply inside the next
    call) and returns 0, or -1 for a value it refuses (which changes nothing)."""

    def __init__(self, temperature: float, seed: int, model_rate: int, quiet_boost: float):
        super().__init__()
        self.register_buffer("forward_params", torch.tensor([2, 1, 1, 1]))
        self.forward_input_labels = [
            "(signal) temperature offset",
            "(signal) audio the voice listens to while listen is on",
        ]
        self.forward_output_labels = ["(signal) generated audio"]
        # nn~'s type ids: bool 0, int 1, float 2.
        self.register_buffer("temperature_params", torch.tensor([2]))
        self.register_buffer("seed_params", torch.tensor([1]))
        self.register_buffer("gain_params", torch.tensor([2]))
        self.register_buffer("reset_params", torch.tensor([0]))
        self.register_buffer("listen_params", torch.tensor([0]))
        self.register_buffer("quiet_boost_params", torch.tensor([2]))
        # Plain attributes, set outside inference mode by the setters.
        self.temperature = float(temperature)
        self.seed = int(seed)
        self.gain = 1.0
        self.reset_requested = True
        self.listen = False
        self.quiet_boost = float(quiet_boost)
        # The host's rate: its ratio to the model's, the interpolating filter for it (ratio
        # 1: the samples as made), and whether the host's rate was refused.
        self.model_rate = model_rate
        self.ratio = 1
        self.register_buffer("fir", torch.ones(1, 1, 1))
        self.register_buffer("anti_alias", torch.ones(1, 1, 1))  # for what the voice hears
        self.rate_refused = False
        self.max_ratio = MAX_RATIO
        self.filter_zeros = FILTER_ZEROS
        self.filter_beta = FILTER_BETA
        self.filter_rolloff = FILTER_ROLLOFF

    @torch.jit.export
    def get_methods(self) -> list[str]:
        return ["forward"]

    @torch.jit.export
    def get_attributes(self) -> list[str]:
        return ["temperature", "seed", "gain", "reset", "listen", "quiet_boost"]

    @torch.jit.export
    def get_temperature(self) -> list[float]:
        return [self.temperature]

    @torch.jit.export
    def set_temperature(self, value: float) -> int:
        if not math.isfinite(value) or value <= 0.0 or value > 100.0:
            return -1
        self.temperature = value
        return 0

    @torch.jit.export
    def get_seed(self) -> list[int]:
        return [self.seed]

    @torch.jit.export
    def set_seed(self, value: int) -> int:
        """A new seed starts a new take (from silence) at the next call."""
        if value < 0:
            return -1
        self.seed = value
        self.reset_requested = True
        return 0

    @torch.jit.export
    def get_gain(self) -> list[float]:
        return [self.gain]

    @torch.jit.export
    def set_gain(self, value: float) -> int:
        if not math.isfinite(value) or value < 0.0 or value > 100.0:
            return -1
        self.gain = value
        return 0

    @torch.jit.export
    def get_reset(self) -> list[bool]:
        return [self.reset_requested]

    @torch.jit.export
    def set_reset(self, value: bool) -> int:
        """True starts a new take (from silence, the seed's stream from its start) at the
        next call; False is accepted and does nothing."""
        if value:
            self.reset_requested = True
        return 0

    @torch.jit.export
    def get_listen(self) -> list[bool]:
        return [self.listen]

    @torch.jit.export
    def set_listen(self, value: bool) -> int:
        """True: from the next frame on, the voice hears the second input instead of its
        own draws (and is silent); False: it goes on from what it heard."""
        self.listen = value
        return 0

    @torch.jit.export
    def get_quiet_boost(self) -> list[float]:
        return [self.quiet_boost]

    @torch.jit.export
    def set_quiet_boost(self, value: float) -> int:
        """1 to 10; 1: off."""
        if not math.isfinite(value) or value < 1.0 or value > 10.0:
            return -1
        self.quiet_boost = value
        return 0

    @torch.jit.export
    def get_sample_rate(self) -> list[int]:
        return [self.model_rate * self.ratio]

    @torch.jit.export
    def set_sample_rate(self, rate: int) -> int:
        """The host's rate: a whole multiple of the model's (up to MAX_RATIO) is made by
        interpolation; any other is refused with a printed line (forward is then silent)."""
        if rate <= 0 or rate % self.model_rate != 0 or rate // self.model_rate > self.max_ratio:
            print(
                "samplernn: this voice plays at "
                + str(self.model_rate)
                + " Hz or a whole multiple of it up to "
                + str(self.model_rate * self.max_ratio)
                + " Hz; the host runs at "
                + str(rate)
                + " Hz: set the host's sample rate to one of those (the output is silent)"
            )
            self.rate_refused = True
            return -1
        self.rate_refused = False
        self.ratio = rate // self.model_rate
        design = (self.ratio, self.filter_zeros, self.filter_beta, self.filter_rolloff)
        self.fir = interpolation_filter(design[0], design[1], design[2], design[3])
        self.anti_alias = decimation_filter(design[0], design[1], design[2], design[3])
        self.reset_requested = True
        return 0

    # -- generation --------------------------------------------------------------------


class LiveVoice(VoiceControls):
    """See the module's docstring. Built by :func:`samplernn_cli.voice.build.build_voice`."""

    def __init__(
        self,
        tiers: list[FrameTierVoice],  # bottom up, as in the model
        sample: SampleTierVoice,
        decode_table: Tensor,
        scale_table: Tensor,
        boundaries: Tensor,
        zero_code: int,
        model_rate: int,
        temperature: float,
        seed: int,
        watch: QuietWatch,
        quiet_boost: float,
    ):
        super().__init__(temperature, seed, model_rate, quiet_boost)
        self.watch = watch
        # Top tier first: each tier reads the vector of the tier before it in this list.
        self.tiers = nn.ModuleList(tiers[::-1])
        self.sample = sample
        self.frame_size = tiers[0].frame_samples  # the sample tier reads this many codes
        self.chunk = tiers[-1].frame_samples  # samples made per step of the top tier
        self.hidden = tiers[0].hidden
        self.history = self.chunk
        self.levels = int(decode_table.shape[0])
        self.zero_code = zero_code
        self.register_buffer("decode_table", decode_table.detach().clone().float())
        self.register_buffer("scale_table", scale_table.detach().clone().float())
        # Where the quantizer's codes change (levels - 1 rising values): bucketize encodes.
        self.register_buffer("boundaries", boundaries.detach().clone().float())

        # State: changed in place during a take, made afresh by a reset (_reset, _adopt).
        self.register_buffer("batch", torch.zeros(1, dtype=torch.long))
        self.register_buffer("codes", torch.full((1, 2 * self.chunk), zero_code, dtype=torch.long))
        self.register_buffer("chunk_index", torch.zeros(1, dtype=torch.long))
        self.register_buffer("fir_past", torch.zeros(1, 0))
        self.register_buffer("ready", torch.zeros(1, 0))  # host-rate samples made, not yet out
        self.register_buffer("ready_count", torch.zeros(1, dtype=torch.long))
        # The second input's last host samples, for the frames the voice listens to.
        self.register_buffer("heard", torch.zeros(1, 0))

    def _reset(self, batch: int) -> None:
        """A new take: state for ``batch`` rows, made afresh (in the mode of this call)."""
        for tier in self.tiers:
            tier.reset(batch)
        self.batch = torch.full([1], batch, dtype=torch.long)
        size = [batch, self.history + self.chunk]
        self.codes = torch.full(size, self.zero_code, dtype=torch.long)
        self.chunk_index = torch.zeros(1, dtype=torch.long)
        self.fir_past = torch.zeros(batch, self.fir.shape[2] - 1)
        self.ready = torch.zeros(batch, self.chunk * self.ratio)
        self.ready_count = torch.zeros(1, dtype=torch.long)
        self.heard = torch.zeros(batch, self._heard_span())
        self.sample.reset(batch)
        self.watch.reset(batch)
        self.reset_requested = False

    def _adopt(self) -> None:
        """Copy the state into tensors of this call's mode. Tensors made under inference
        mode (nn~'s calls) cannot be changed in place outside it, nor the other way round
        by some torch versions; a caller that switches gets the same take, continued."""
        for tier in self.tiers:
            tier.adopt()
        self.batch = self.batch.clone()
        self.codes = self.codes.clone()
        self.chunk_index = self.chunk_index.clone()
        self.fir_past = self.fir_past.clone()
        self.ready = self.ready.clone()
        self.ready_count = self.ready_count.clone()
        self.heard = self.heard.clone()
        self.sample.adopt()
        self.watch.adopt()

    def _heard_span(self) -> int:
        """Host samples of the second input that one listened chunk reads: the chunk's
        span and the anti-aliasing filter's past."""
        return self.chunk * self.ratio + self.anti_alias.shape[2] - 1

    def _chunk(self, control: Tensor, heard: Tensor) -> None:
        """Make the next chunk: ``chunk`` codes, decoded, interpolated to the host's rate
        into ``ready``. ``control`` (B,) is the temperature offset; ``heard`` (B, span)
        the second input's host samples that end where the chunk begins (listening, the
        voice takes its codes from them, a chunk late, and is silent)."""
        batch = int(self.batch[0])
        listening = self.listen
        codes = self.codes
        history = self.history
        noise = torch.zeros(0)
        if listening:
            resampled = F.conv1d(heard.unsqueeze(1), self.anti_alias, stride=self.ratio)
            level = resampled.squeeze(1).clamp(-1.0, 1.0)
            codes.narrow(1, history, self.chunk).copy_(torch.bucketize(level, self.boundaries))
        else:
            temperature = torch.nan_to_num(control + self.temperature, nan=self.temperature)
            temperature = self.watch.boosted(temperature.clamp(0.01, 100.0), self.quiet_boost)
            noise = gumbel_noise(
                self.seed, int(self.chunk_index[0]), [batch, self.chunk, self.levels]
            )
            noise = noise * temperature + self.sample.b_out
        # The sample tier's inputs: the rows of the codes before the chunk, each frame's
        # conditioning when its frame tier steps, each draw's rows as it is made.
        fs = self.frame_size
        inputs = torch.zeros(0)
        if not listening:
            inputs = self.sample.begin(codes.narrow(1, history - fs, fs))
        top = torch.zeros(batch, self.hidden)
        for s in range(0, self.chunk, fs):  # each frame of the bottom tier
            position = history + s
            above = self.step_frame_tiers(codes, position, s, top)
            if listening:
                continue
            # The bottom frame tier's conditioning of this frame's samples, then the draws:
            # argmax(l / T + G) = argmax(l + T G), the noise scaled above.
            inputs.narrow(1, s, fs).add_(above)
            codes.narrow(1, position, fs).copy_(self.sample.draw(inputs, noise, s, fs))
        self.sample.end(inputs, not listening)
        self.watch.add(codes[:, history:])
        made = self.decode_table[codes[:, history:]] * self.gain
        if listening:
            made = torch.zeros_like(made)
        signal = torch.cat([self.fir_past, made], 1)
        taps = self.fir.shape[2]
        self.fir_past.copy_(signal[:, signal.shape[1] - (taps - 1) :])
        up = F.conv1d(signal.unsqueeze(1), self.fir)  # (B, ratio, chunk)
        self.ready.copy_(up.transpose(1, 2).reshape(batch, -1))
        self.ready_count.fill_(self.ready.shape[1])
        codes[:, :history] = codes[:, self.chunk :].clone()
        self.chunk_index.add_(1)

    def step_frame_tiers(self, codes: Tensor, position: int, s: int, top: Tensor) -> Tensor:
        """Step the frame tiers whose frame starts at sample ``s`` of the chunk (``position``
        in ``codes``), top down, each reading the vector the tier above made for its frame
        (``top``, zeros, for the top tier); returns the bottom tier's conditioning of the
        samples of its frame, (B, frame_size, H)."""
        above = top
        above_ratio = 1
        first = True
        for tier in self.tiers:
            size = tier.frame_samples
            if s % size == 0:
                frame = self.scale_table[codes.narrow(1, position - size, size)]
                if not first:
                    tier.step(frame, above.select(1, (s // size) % above_ratio))
                else:
                    tier.step(frame, top)
            above = tier.out
            above_ratio = tier.ratio
            first = False
        return above

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[2] == 0:
            return torch.zeros(1, 1, 0)
        batch, length = x.shape[0], x.shape[2]
        out = torch.zeros(batch, 1, length)
        if self.rate_refused or batch == 0:
            return out
        if self.reset_requested or batch != int(self.batch[0]):
            self._reset(batch)
        elif self.codes.is_inference() != torch.zeros(0).is_inference():
            self._adopt()
        control = torch.zeros(batch, length)
        if x.shape[1] > 0:
            control = x[:, 0].float()
        sound = torch.zeros(batch, length)
        if x.shape[1] > 1:
            sound = torch.nan_to_num(x[:, 1].float(), nan=0.0)
        span = self._heard_span()
        if self.heard.shape[1] != span:  # the host's rate changed the filter
            self.heard = torch.zeros(batch, span)
        done = 0
        while done < length:
            if int(self.ready_count[0]) == 0:
                heard = self.heard
                if self.listen:
                    if done >= span:
                        heard = sound.narrow(1, done - span, span)
                    else:
                        past = self.heard.narrow(1, done, span - done)
                        heard = torch.cat([past, sound.narrow(1, 0, done)], 1)
                self._chunk(control[:, done], heard)
            available = int(self.ready_count[0])
            start = self.ready.shape[1] - available
            take = min(length - done, available)
            out[:, 0, done : done + take] = self.ready[:, start : start + take]
            self.ready_count.sub_(take)
            done += take
        if length >= span:
            self.heard.copy_(sound.narrow(1, length - span, span))
        else:
            self.heard.copy_(torch.cat([self.heard.narrow(1, length, span - length), sound], 1))
        return out
