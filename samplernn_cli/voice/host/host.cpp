// A live host for samplernn voices (samplernn export --format nn) that calls a voice the
// way nn~'s backend does in Max/MSP and Pure Data: the model loaded with torch::jit::load,
// the method's params read from "<method>_params", attributes set from strings through
// their setters by the type ids in "<name>_params", set_sample_rate(host rate) at load, and
// then one call per buffer: the input copied from plain float buffers (from_blob),
// reshaped as nn~ does, the method run under c10::InferenceMode in a thread of its own that
// is joined before the next buffer (as Pd's nn~ does), the output's length checked.
//
// Prints each buffer's real-time factor (seconds of computing per second of audio) and a
// summary; --out writes the samples as raw float32 (little-endian on the usual machines).
//
//   samplernn-voice-host VOICE.ts [--rate 48000] [--buffer 4096] [--seconds 10]
//       [--threads 1] [--control 0.0] [--set name=value]... [--out FILE] [--quiet]
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

std::vector<int> method_params(torch::jit::script::Module &model, const std::string &method) {
  auto params = model.attr(method + "_params").toTensor();
  std::vector<int> out;
  for (int i = 0; i < 4; i++) out.push_back(params[i].item().toInt());
  return out;
}

bool has_method(torch::jit::script::Module &model, const std::string &name) {
  for (const auto &m : model.get_methods())
    if (m.name() == name) return true;
  return false;
}

// nn~'s parsing of an attribute's value from its message (parsing_utils.cpp).
c10::IValue parse(int type_id, const std::string &text) {
  switch (type_id) {
    case 0: return c10::IValue(!(text == "0" || text == "false"));
    case 1: return c10::IValue(static_cast<int64_t>(std::stoi(text)));
    case 2: return c10::IValue(static_cast<double>(std::stof(text)));
    case 3: return c10::IValue(text);
    default: throw std::runtime_error("unsupported attribute type id " + std::to_string(type_id));
  }
}

void set_attribute(torch::jit::script::Module &model, const std::string &assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos) throw std::runtime_error("--set takes name=value");
  std::string name = assignment.substr(0, eq), value = assignment.substr(eq + 1);
  auto types = model.attr(name + "_params").toTensor();
  if (types.numel() != 1) throw std::runtime_error("attribute " + name + " takes several values");
  std::vector<c10::IValue> args = {parse(types[0].item().toInt(), value)};
  int result = model.get_method("set_" + name)(args).toInt();
  if (result != 0) throw std::runtime_error("setter for " + name + " refused " + value);
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    std::cerr << "usage: samplernn-voice-host VOICE.ts [--rate HZ] [--buffer N] [--seconds S]"
                 " [--threads T] [--control X] [--set name=value]... [--out FILE] [--quiet]\n";
    return 2;
  }
  std::string path = argv[1], out_path;
  int rate = 48000, buffer = 4096, threads = 1;
  double seconds = 10.0;
  float control = 0.0f;
  bool quiet = false;
  std::vector<std::string> assignments;
  for (int i = 2; i < argc; i++) {
    std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(arg + " needs a value");
      return argv[++i];
    };
    try {
      if (arg == "--rate") rate = std::stoi(next());
      else if (arg == "--buffer") buffer = std::stoi(next());
      else if (arg == "--seconds") seconds = std::stod(next());
      else if (arg == "--threads") threads = std::stoi(next());
      else if (arg == "--control") control = std::stof(next());
      else if (arg == "--set") assignments.push_back(next());
      else if (arg == "--out") out_path = next();
      else if (arg == "--quiet") quiet = true;
      else throw std::runtime_error("unknown option " + arg);
    } catch (const std::exception &e) {
      std::cerr << "error: " << e.what() << "\n";
      return 2;
    }
  }
  try {
    at::set_num_threads(threads);
    auto model = torch::jit::load(path);
    model.eval();
    auto methods = model.get_method("get_methods")(std::vector<c10::IValue>{}).toList();
    bool found = false;
    for (size_t i = 0; i < methods.size(); i++)
      found = found || methods.get(i).toStringRef() == "forward";
    if (!found) throw std::runtime_error(path + " has no forward method");
    auto params = method_params(model, "forward");
    int in_dim = params[0], in_ratio = params[1], out_dim = params[2], out_ratio = params[3];
    if (has_method(model, "set_sample_rate"))
      model.get_method("set_sample_rate")(std::vector<c10::IValue>{rate});
    for (const auto &assignment : assignments) set_attribute(model, assignment);

    std::ofstream out;
    if (!out_path.empty()) out.open(out_path, std::ios::binary);
    // The first input is the control (--control); any others (audio to listen to) silence.
    std::vector<std::vector<float>> inputs(in_dim, std::vector<float>(buffer, 0.0f));
    std::fill(inputs[0].begin(), inputs[0].end(), control);
    std::vector<float> output(buffer);
    long calls = std::max(1L, static_cast<long>(seconds * rate / buffer + 0.5));
    std::vector<double> factors;
    for (long call = 0; call < calls; call++) {
      bool ok = false;
      double elapsed = 0;
      std::thread worker([&]() {
        c10::InferenceMode guard;
        auto started = std::chrono::steady_clock::now();
        std::vector<at::Tensor> tensors;
        for (int c = 0; c < in_dim; c++)
          tensors.push_back(torch::from_blob(inputs[c].data(), {1, 1, buffer}).clone());
        auto x = torch::cat(tensors, 1).reshape({in_dim, 1, -1, in_ratio});
        x = x.select(-1, -1).permute({1, 0, 2});
        std::vector<c10::IValue> args = {x};
        try {
          auto y = model.forward(args).toTensor();
          y = y.repeat_interleave(out_ratio).reshape({1, out_dim, -1});
          if (y.size(2) != buffer) {
            std::cout << "model output size is not consistent, expected " << buffer
                      << " samples, got " << y.size(2) << "!\n";
            return;
          }
          auto first = y.index({0, 0}).contiguous();
          std::memcpy(output.data(), first.data_ptr<float>(), buffer * sizeof(float));
          ok = true;
        } catch (const std::exception &e) {
          std::cerr << e.what() << "\n";
        }
        elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      });
      worker.join();
      if (!ok) return 1;
      double factor = elapsed * rate / buffer;
      factors.push_back(factor);
      if (!quiet) std::printf("buffer %ld: real-time factor %.3f\n", call + 1, factor);
      if (out) out.write(reinterpret_cast<const char *>(output.data()), buffer * sizeof(float));
    }
    // The first buffers run TorchScript's profiling passes; the summary counts the rest.
    std::vector<double> steady(factors.begin() + std::min<size_t>(2, factors.size() - 1), factors.end());
    std::sort(steady.begin(), steady.end());
    long late = std::count_if(steady.begin(), steady.end(), [](double f) { return f > 1.0; });
    std::printf("%s: %ld buffers of %d at %d Hz, %d thread(s): first %.3f, then median %.3f, "
                "worst %.3f, late %ld of %zu\n",
                path.c_str(), calls, buffer, rate, threads, factors[0],
                steady[steady.size() / 2], steady.back(), late, steady.size());
    return 0;
  } catch (const c10::Error &e) {
    std::cerr << "error: " << e.what_without_backtrace() << "\n";
  } catch (const std::exception &e) {
    std::cerr << "error: " << e.what() << "\n";
  }
  return 1;
}
