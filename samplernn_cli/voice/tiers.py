"""The live voice's tiers: an LSTM or GRU layer run one step at a time with its state in
buffers, a frame tier stepped once per frame, and the sample tier drawing one code at a time
(see :mod:`samplernn_cli.voice.module`).

No ``from __future__ import annotations`` here: TorchScript reads the annotations.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Float32Product(nn.Module):
    """``c + x @ weight.T``, the weight as trained, kept transposed (in, out): torch.mm
    with it is a sixth faster here than F.linear (``benchmarks/voice.py``)."""

    def __init__(self, weight: Tensor):  # (out, in), as torch stores it
        super().__init__()
        self.register_buffer("w", weight.detach().t().contiguous().float())

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        return torch.addmm(c, x, self.w)


class Float32Layer(nn.Module):
    """``x @ weight.T + bias``, followed by a ReLU where ``relu``: :class:`Float32Product`
    with its bias."""

    def __init__(self, weight: Tensor, bias: Tensor, relu: bool):
        super().__init__()
        self.product = Float32Product(weight)
        self.register_buffer("bias", bias.detach().clone().float())
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        y = self.product(x, self.bias)
        return torch.relu_(y) if self.relu else y


class Int8Layer(nn.Module):
    """``x @ weight.T + bias`` (and a ReLU where ``relu``) with the weight in int8, a scale
    per output, symmetric, and ``x`` quantized per call: torch's dynamic quantized linear
    (FBGEMM on x86, QNNPACK on ARM), bias and ReLU in the same operation. A product of one
    row with a 256 x 256 float32 matrix reads 256 kB and is bound by the cache's bandwidth
    here; in int8 it reads a quarter (``benchmarks/voice_precision.py``). The file keeps the
    int8 weight and its scales, packed again for the CPU that loads it."""

    def __init__(self, weight: Tensor, bias: Tensor, relu: bool):
        super().__init__()
        w = weight.detach().float()
        scales = (w.abs().amax(1) / 127.0).clamp(min=1e-12).double()
        zeros = torch.zeros(w.shape[0], dtype=torch.long)
        quantized = torch.quantize_per_channel(w, scales, zeros, 0, torch.qint8)
        self.packed = torch.ops.quantized.linear_prepack(quantized, bias.detach().float())
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        if self.relu:
            return torch.ops.quantized.linear_relu_dynamic(x, self.packed, True)
        return torch.ops.quantized.linear_dynamic(x, self.packed, True)


def layer(weight: Tensor, bias: Tensor, precision: str, relu: bool = False) -> nn.Module:
    """A layer with ``weight`` (out, in) and ``bias`` in ``precision``, float32 or int8.

    A voice in int8 has int8 layers where their rounding leaves the model's distribution as
    it was: the sample tier's hidden layers and the frame tiers' upsampling. The output
    layer (whose logits' absolute errors reach the distribution) and the recurrent layers
    (whose errors add up from step to step) stay float32: in int8 they moved a piano model's
    distribution by 0.04 bits per sample on average, against 0.0002 without them
    (``benchmarks/voice_precision.py``)."""
    if precision == "int8":
        return Int8Layer(weight, bias, relu)
    return Float32Layer(weight, bias, relu)


class RecurrentLayer(nn.Module):
    """One LSTM or GRU layer's weights, run one step at a time, with its state."""

    def __init__(self, lstm: bool, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor):
        super().__init__()
        self.lstm = lstm
        hidden = w_hh.shape[1]  # (gates, hidden) as torch stores it
        # Float32 in every precision: in int8, the state's rounding errors add up from step
        # to step (see layer()).
        self.input_product = Float32Product(w_ih)
        self.state_product = Float32Product(w_hh)
        self.register_buffer("b_ih", b_ih.detach().clone().float())
        self.register_buffer("b_hh", b_hh.detach().clone().float())
        # The state, (batch, hidden); h0/c0 what a reset returns it to, (1, hidden).
        self.register_buffer("h", torch.zeros(1, hidden))
        self.register_buffer("c", torch.zeros(1, hidden))
        self.register_buffer("h0", torch.zeros(1, hidden))
        self.register_buffer("c0", torch.zeros(1, hidden))

    def reset(self, batch: int) -> None:
        self.h = self.h0.expand(batch, -1).clone()
        self.c = self.c0.expand(batch, -1).clone()

    def adopt(self) -> None:
        self.h = self.h.clone()
        self.c = self.c.clone()

    def step(self, x: Tensor) -> Tensor:
        """(B, in) -> (B, hidden), the state moved on by one step."""
        gates_x = self.input_product(x, self.b_ih)
        gates_h = self.state_product(self.h, self.b_hh)
        if self.lstm:
            i, f, g, o = (gates_x + gates_h).chunk(4, 1)
            c = torch.sigmoid(f) * self.c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            self.c.copy_(c)
        else:
            r_x, z_x, n_x = gates_x.chunk(3, 1)
            r_h, z_h, n_h = gates_h.chunk(3, 1)
            r = torch.sigmoid(r_x + r_h)
            z = torch.sigmoid(z_x + z_h)
            n = torch.tanh(n_x + r * n_h)
            h = (1.0 - z) * n + z * self.h
        self.h.copy_(h)
        return h


class FrameTierVoice(nn.Module):
    """A frame tier stepped once per frame: frame (and the tier above's vector) in, one
    conditioning vector per frame (or sample) of the tier below out, kept in ``out``."""

    def __init__(
        self,
        frame_samples: int,
        ratio: int,
        skip: bool,
        input_weight: Tensor,
        input_bias: Tensor,
        layers: list[RecurrentLayer],
        skip_weight: Tensor,
        skip_bias: Tensor,
        upsample_weight: Tensor,
        upsample_bias: Tensor,
        precision: str = "float32",
    ):
        super().__init__()
        self.frame_samples = frame_samples
        self.ratio = ratio
        self.skip = skip
        self.hidden = input_weight.shape[0]
        self.register_buffer("input_weight", input_weight.detach().clone().float())
        self.register_buffer("input_bias", input_bias.detach().clone().float())
        self.layers = nn.ModuleList(layers)
        # Float32 in every precision (see layer()); without skip connections, an empty
        # product never run.
        self.skip_product = Float32Product(skip_weight)
        self.register_buffer("skip_bias", skip_bias.detach().clone().float())
        self.upsample = layer(upsample_weight, upsample_bias, precision)
        # (B, ratio, H): this tier's vectors for the frames (or samples) of its current frame.
        self.register_buffer("out", torch.zeros(1, ratio, self.hidden))

    def reset(self, batch: int) -> None:
        for layer in self.layers:
            layer.reset(batch)
        self.out = torch.zeros(batch, self.ratio, self.hidden)

    def adopt(self) -> None:
        for layer in self.layers:
            layer.adopt()
        self.out = self.out.clone()

    def step(self, frame: Tensor, above: Tensor) -> None:
        """frame (B, frame_samples) scaled codes; above (B, H), zeros for the top tier."""
        x = F.linear(frame, self.input_weight, self.input_bias) + above
        if self.skip:
            outputs: list[Tensor] = []
            layer_input = x
            for layer in self.layers:
                out = layer.step(layer_input)
                outputs.append(out)
                layer_input = torch.cat([x, out], 1)
            y = self.skip_product(torch.cat(outputs, 1), self.skip_bias)
        else:
            y = x
            for layer in self.layers:
                y = layer.step(y)
        up = self.upsample(y)
        self.out.copy_(up.view(-1, self.ratio, self.hidden))


class SampleTierVoice(nn.Module):
    """The sample tier, drawing one code at a time. Its first layer (a sum of one table row
    per code of the last frame) is kept as what each drawn code adds to the next frame_size
    samples' inputs: ``code_rows[c, k]`` is table row ``(frame_size - 1 - k) * levels + c``,
    what code ``c`` adds to the sample ``k + 1`` after it, so one add per draw keeps every
    input up to date, in place of a gather and a sum of frame_size rows per sample (their
    share of the loop 0.09 of real time against 0.17: ``benchmarks/voice.py --parts``). A
    chunk's inputs (``begin``) are carried from the chunk before, or gathered from the codes
    before it after a reset or a listened chunk."""

    def __init__(
        self,
        tables: Tensor,  # (frame_size * levels, H), row p * levels + c
        hidden_weights: list[Tensor],
        hidden_biases: list[Tensor],
        output_weight: Tensor,
        output_bias: Tensor,
        frame_size: int,
        chunk: int,
        precision: str = "float32",
    ):
        super().__init__()
        self.frame_size = frame_size
        self.chunk = chunk
        self.hidden = tables.shape[1]
        self.levels = tables.shape[0] // frame_size
        fs, levels, hidden = frame_size, self.levels, self.hidden
        by_position = tables.detach().float().view(fs, levels, hidden)
        self.register_buffer("code_rows", by_position.flip(0).transpose(0, 1).contiguous())
        # Input s of a chunk reads code i of the last frame before it at position i - s
        # where i >= s: row k = frame_size - 1 - (i - s) of that code in code_rows. One
        # gather of frame_size ** 2 rows, those with i < s masked out.
        s_index = torch.arange(fs).unsqueeze(1)
        i_index = torch.arange(fs).unsqueeze(0)
        reads = i_index >= s_index
        self.register_buffer("prior_k", torch.where(reads, fs - 1 - (i_index - s_index), 0))
        self.register_buffer("prior_mask", reads.float().unsqueeze(2))  # (FS, FS, 1)
        # The MLP; the output layer's bias is added with the draws' noise, and the output
        # layer stays float32 in every precision (see layer()).
        self.hidden1 = layer(hidden_weights[0], hidden_biases[0], precision, relu=True)
        self.hidden2 = layer(hidden_weights[1], hidden_biases[1], precision, relu=True)
        self.output = Float32Product(output_weight)
        self.register_buffer("b_out", output_bias.detach().clone().float())
        # The next chunk's first frame_size inputs as this chunk's draws left them.
        self.register_buffer("carried", torch.zeros(1, fs, hidden))
        self.carried_valid = False

    def reset(self, batch: int) -> None:
        self.carried = torch.zeros(batch, self.frame_size, self.hidden)
        self.carried_valid = False

    def adopt(self) -> None:
        self.carried = self.carried.clone()

    def begin(self, last: Tensor) -> Tensor:
        """(B, chunk + frame_size, H) the inputs of a chunk's samples (and of the frame_size
        after it, which its last draws reach) from the codes of the frame before it, ``last``
        (B, frame_size)."""
        batch, fs = last.shape[0], self.frame_size
        inputs = torch.zeros(batch, self.chunk + fs, self.hidden)
        if self.carried_valid:
            inputs.narrow(1, 0, fs).copy_(self.carried)
        else:
            rows = (last.unsqueeze(1) * fs + self.prior_k).view(-1)  # (B * FS * FS,)
            prior = self.code_rows.view(-1, self.hidden).index_select(0, rows)
            prior = prior.view(batch, fs, fs, self.hidden) * self.prior_mask
            inputs.narrow(1, 0, fs).copy_(prior.sum(2))
        return inputs

    def logits(self, first: Tensor, offset: Tensor) -> Tensor:
        """(B, levels) the output layer's values plus ``offset`` for samples whose first
        layer sums to ``first`` (B, H)."""
        return self.output(self.hidden2(self.hidden1(torch.relu(first))), offset)

    def draw(self, inputs: Tensor, noise: Tensor, start: int, count: int) -> Tensor:
        """(B, count) the codes of samples ``start`` to ``start + count - 1`` of the chunk,
        each the argmax of its logits plus its row of ``noise`` (B, chunk, levels: the
        output layer's bias and the draws' noise). Each draw adds its code's rows to the
        inputs of the samples after it.

        Written for the fewest operations per sample, since each costs about a microsecond
        of dispatch here: the samples' inputs and noise as views made once (``unbind``),
        each layer's bias (and ReLU, in int8) inside its product, and for one row (what nn~
        plays) the code read as a number and the codes made into a tensor once."""
        fs = self.frame_size
        sample_inputs = inputs.narrow(1, start, count).unbind(1)
        sample_noise = noise.narrow(1, start, count).unbind(1)
        if inputs.shape[0] == 1:
            line = inputs.select(0, 0)
            drawn: list[int] = []
            for j in range(count):
                code = int(torch.argmax(self.logits(sample_inputs[j], sample_noise[j])))
                # The drawn code's table rows, read as a view of code_rows (index_select,
                # which copies them first, takes three times as long).
                line.narrow(0, start + j + 1, fs).add_(self.code_rows[code])
                drawn.append(code)
            return torch.tensor(drawn, dtype=torch.long).unsqueeze(0)
        rows: list[Tensor] = []
        for j in range(count):
            codes = torch.argmax(self.logits(sample_inputs[j], sample_noise[j]), 1)
            for b in range(codes.shape[0]):
                inputs[b, start + j + 1 : start + j + 1 + fs].add_(self.code_rows[int(codes[b])])
            rows.append(codes)
        return torch.stack(rows, 1)

    def end(self, inputs: Tensor, drew: bool) -> None:
        """Keep what the chunk's draws add to the next chunk's inputs; a chunk that did not
        draw (listened) leaves the next one to gather them."""
        if drew:
            self.carried.copy_(inputs.narrow(1, self.chunk, self.frame_size))
        self.carried_valid = drew
