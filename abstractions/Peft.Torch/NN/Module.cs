using System.Text;

namespace Peft.Torch;

public static partial class torch
{
    public static partial class nn
    {
        /// <summary>
        /// Base class of layers and models (torch.nn.Module). Parameters, buffers and child modules are
        /// registered explicitly by name (no reflection) and enumerated under dotted, timm-style names
        /// such as <c>blocks.0.attn.qkv.weight</c>. A module owns its parameters and buffers: disposing it
        /// disposes them and its children.
        /// </summary>
        public abstract class Module : IDisposable
        {
            private readonly OrderedDictionary<string, Parameter> _parameters = new();
            private readonly OrderedDictionary<string, Tensor> _buffers = new();
            private readonly HashSet<string> _nonPersistentBuffers = new();
            private readonly OrderedDictionary<string, Module> _modules = new();
            private bool _disposed;

            /// <summary>True in training mode (the default), false after <see cref="eval"/>.</summary>
            public bool training { get; private set; } = true;

            // ---- registration ---------------------------------------------------------------------

            /// <summary>Registers (or replaces) the parameter <paramref name="name"/> and returns it.</summary>
            public Parameter RegisterParameter(string name, Parameter parameter)
            {
                CheckName(name, _parameters);
                _parameters[name] = parameter;
                return parameter;
            }

            /// <summary>
            /// Registers (or replaces) a buffer: a tensor that is part of the module's state but not trained.
            /// A non-persistent buffer moves with <c>to()</c> but is left out of <see cref="state_dict"/>.
            /// The buffer leaves any dispose scope; the module owns it.
            /// </summary>
            public T RegisterBuffer<T>(string name, T buffer, bool persistent = true) where T : Tensor
            {
                CheckName(name, _buffers);
                buffer.DetachFromDisposeScope();
                _buffers[name] = buffer;
                if (persistent) _nonPersistentBuffers.Remove(name);
                else _nonPersistentBuffers.Add(name);
                return buffer;
            }

            /// <summary>Registers (or replaces) the child module <paramref name="name"/> and returns it.</summary>
            public T RegisterModule<T>(string name, T module) where T : Module
            {
                CheckName(name, _modules);
                if (ReferenceEquals(module, this)) throw new ArgumentException("a module cannot be its own child", nameof(module));
                _modules[name] = module;
                return module;
            }

            // A name is one path segment, and unique across parameters, buffers and children.
            private void CheckName<T>(string name, OrderedDictionary<string, T> own)
            {
                ArgumentException.ThrowIfNullOrEmpty(name);
                if (name.Contains('.', StringComparison.Ordinal))
                    throw new ArgumentException($"name '{name}' must not contain '.'", nameof(name));
                var taken = (_parameters.ContainsKey(name) && own != (object)_parameters)
                    || (_buffers.ContainsKey(name) && own != (object)_buffers)
                    || (_modules.ContainsKey(name) && own != (object)_modules);
                if (taken) throw new ArgumentException($"{GetType().Name} already has a member named '{name}'", nameof(name));
            }

            // ---- enumeration ----------------------------------------------------------------------

            /// <summary>This module (named "") and every descendant, depth first, each module once.</summary>
            public IEnumerable<(string name, Module module)> named_modules() =>
                NamedModules(this, "", new HashSet<Module>(ReferenceEqualityComparer.Instance));

            private static IEnumerable<(string, Module)> NamedModules(Module module, string prefix, HashSet<Module> seen)
            {
                if (!seen.Add(module)) yield break;
                yield return (prefix, module);
                foreach (var (name, child) in module._modules)
                    foreach (var entry in NamedModules(child, Join(prefix, name), seen))
                        yield return entry;
            }

            public IEnumerable<Module> modules() => named_modules().Select(e => e.module);

            public IEnumerable<(string name, Module module)> named_children() => _modules.Select(kv => (kv.Key, kv.Value));

            public IEnumerable<Module> children() => _modules.Values;

            /// <summary>Parameters under their dotted names; a parameter shared by two modules is listed once.</summary>
            public IEnumerable<(string name, Parameter parameter)> named_parameters(bool recurse = true) =>
                NamedMembers(m => m._parameters, recurse);

            public IEnumerable<Parameter> parameters(bool recurse = true) => named_parameters(recurse).Select(e => e.parameter);

            /// <summary>Buffers (persistent or not) under their dotted names.</summary>
            public IEnumerable<(string name, Tensor buffer)> named_buffers(bool recurse = true) =>
                NamedMembers(m => m._buffers, recurse);

            public IEnumerable<Tensor> buffers(bool recurse = true) => named_buffers(recurse).Select(e => e.buffer);

            private IEnumerable<(string, T)> NamedMembers<T>(Func<Module, OrderedDictionary<string, T>> members, bool recurse)
                where T : class
            {
                var seen = new HashSet<T>(ReferenceEqualityComparer.Instance);
                var scope = recurse ? named_modules() : [("", this)];
                foreach (var (prefix, module) in scope)
                    foreach (var (name, member) in members(module))
                        if (seen.Add(member)) yield return (Join(prefix, name), member);
            }

            /// <summary>The descendant at a dotted path ("" is this module).</summary>
            public Module get_submodule(string target)
            {
                var module = this;
                if (target.Length == 0) return module;
                foreach (var part in target.Split('.'))
                    if (!module._modules.TryGetValue(part, out module!))
                        throw new KeyNotFoundException($"{GetType().Name} has no submodule '{target}' (no '{part}')");
                return module;
            }

            private static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;

            // ---- modes and gradients --------------------------------------------------------------

            /// <summary>Sets training mode on this module and every descendant.</summary>
            public Module train(bool mode = true)
            {
                foreach (var module in modules()) module.training = mode;
                return this;
            }

            /// <summary>Evaluation mode (dropout off), recursively.</summary>
            public Module eval() => train(false);

            /// <summary>Sets requires_grad on every parameter (false freezes the module).</summary>
            public Module requires_grad_(bool requires_grad = true)
            {
                foreach (var p in parameters()) p.requires_grad = requires_grad;
                return this;
            }

            public Module Freeze() => requires_grad_(false);
            public Module Unfreeze() => requires_grad_(true);

            /// <summary>Clears every parameter's gradient (PyTorch's default set_to_none=True).</summary>
            public void zero_grad()
            {
                foreach (var p in parameters()) p.grad = null;
            }

            // ---- device and dtype -----------------------------------------------------------------

            /// <summary>
            /// Moves parameters, buffers and gradients to <paramref name="device"/> in place: each keeps its
            /// identity (the same <see cref="Parameter"/> object, so optimizers and layer fields stay valid)
            /// and gets new data through <see cref="Tensor.set_data"/>, as PyTorch's <c>param.data = ...</c>.
            /// </summary>
            public Module to(Device device) => ApplyToTensors(t => t.to(device), floatingOnly: false);

            /// <summary>Converts floating-point parameters, buffers and gradients in place (integer buffers stay).</summary>
            public Module to(ScalarType dtype)
            {
                if (!dtype.IsFloatingPoint())
                    throw new ArgumentException($"Module.to only accepts floating-point dtypes, got {dtype.Name()}", nameof(dtype));
                return ApplyToTensors(t => t.to(dtype), floatingOnly: true);
            }

            private Module ApplyToTensors(Func<Tensor, Tensor> convert, bool floatingOnly)
            {
                using var noGrad = no_grad();
                var tensors = parameters().Cast<Tensor>().Concat(buffers()).Distinct(ReferenceEqualityComparer.Instance).Cast<Tensor>();
                foreach (var t in tensors.Where(t => !floatingOnly || t.dtype.IsFloatingPoint()))
                {
                    using var grad = t.grad;
                    using (var converted = convert(t)) t.set_data(converted);
                    if (grad is not null)
                    {
                        using var convertedGrad = convert(grad);
                        t.grad = convertedGrad;
                    }
                }
                return this;
            }

            // ---- state dict -----------------------------------------------------------------------

            // Parameters then persistent buffers of each module, depth first: the keys of state_dict.
            private IEnumerable<(string key, Tensor tensor)> StateEntries()
            {
                foreach (var (prefix, module) in named_modules())
                {
                    foreach (var (name, p) in module._parameters) yield return (Join(prefix, name), p);
                    foreach (var (name, b) in module._buffers)
                        if (!module._nonPersistentBuffers.Contains(name)) yield return (Join(prefix, name), b);
                }
            }

            /// <summary>
            /// Parameters and persistent buffers by dotted name, in registration order. The tensors are new
            /// detached handles sharing storage with the module's (as PyTorch's state_dict); they belong to
            /// the current dispose scope, or dispose the returned <see cref="StateDict"/>.
            /// </summary>
            public StateDict state_dict()
            {
                var result = new StateDict();
                foreach (var (key, t) in StateEntries()) result.Add(key, t.detach());
                return result;
            }

            /// <summary>
            /// Copies <paramref name="state"/> into the parameters and buffers under no_grad (converting dtype
            /// and device as copy_ does). Every key is checked before anything is copied. A shape mismatch is
            /// always an error (as in PyTorch); with <paramref name="strict"/>, so are missing and unexpected
            /// keys. The <see cref="StateDictException"/> lists every offending key at once.
            /// </summary>
            public LoadStateDictResult load_state_dict(IReadOnlyDictionary<string, Tensor> state, bool strict = true)
            {
                var targets = StateEntries().ToList();
                var expected = targets.Select(e => e.key).ToHashSet();
                var missing = targets.Where(e => !state.ContainsKey(e.key)).Select(e => e.key).ToList();
                var unexpected = state.Keys.Where(k => !expected.Contains(k)).ToList();
                var mismatches = targets
                    .Where(e => state.TryGetValue(e.key, out var src) && !src.Shape.AsSpan().SequenceEqual(e.tensor.Shape))
                    .Select(e => new SizeMismatch(e.key, e.tensor.shape, state[e.key].shape))
                    .ToList();
                if (mismatches.Count > 0 || (strict && (missing.Count > 0 || unexpected.Count > 0)))
                    throw new StateDictException(GetType().Name, strict ? missing : [], strict ? unexpected : [], mismatches);

                using (no_grad())
                    foreach (var (key, t) in targets)
                        if (state.TryGetValue(key, out var src)) t.copy_(src);
                return new LoadStateDictResult(missing, unexpected);
            }

            // ---- printing and disposal ------------------------------------------------------------

            /// <summary>The layer's settings, shown by ToString (PyTorch's extra_repr).</summary>
            protected virtual string extra_repr() => "";

            /// <summary>The module tree, as PyTorch prints it.</summary>
            public override string ToString()
            {
                var sb = new StringBuilder(GetType().Name).Append('(').Append(extra_repr());
                if (_modules.Count > 0)
                {
                    sb.AppendLine();
                    foreach (var (name, child) in _modules)
                        sb.Append("  (").Append(name).Append("): ").AppendLine(child.ToString().Replace("\n", "\n  ", StringComparison.Ordinal));
                }
                return sb.Append(')').ToString();
            }

            public void Dispose()
            {
                Dispose(true);
                GC.SuppressFinalize(this);
            }

            protected virtual void Dispose(bool disposing)
            {
                if (_disposed || !disposing) return;
                _disposed = true;
                foreach (var p in _parameters.Values) p.Dispose();
                foreach (var b in _buffers.Values) b.Dispose();
                foreach (var m in _modules.Values) m.Dispose();
            }
        }

        /// <summary>A module with a forward function from <typeparamref name="TIn"/> to <typeparamref name="TOut"/>.</summary>
        public abstract class Module<TIn, TOut> : Module
        {
            public abstract TOut forward(TIn input);

            /// <summary>Runs the module (PyTorch's <c>module(x)</c>).</summary>
            public TOut call(TIn input) => forward(input);
        }

        /// <summary>What <see cref="Module.load_state_dict"/> left alone when not strict.</summary>
        public sealed record LoadStateDictResult(IReadOnlyList<string> MissingKeys, IReadOnlyList<string> UnexpectedKeys);

        public sealed record SizeMismatch(string Key, long[] ExpectedShape, long[] FoundShape);

        /// <summary>An ordered name → tensor map that disposes its tensors with itself.</summary>
        public sealed class StateDict : OrderedDictionary<string, Tensor>, IDisposable
        {
            public void Dispose()
            {
                foreach (var t in Values) t.Dispose();
            }
        }

        /// <summary>A state dict that does not fit a module; lists every offending key.</summary>
        public sealed class StateDictException : Exception
        {
            public StateDictException(string moduleName, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected,
                IReadOnlyList<SizeMismatch> mismatches) : base(Describe(moduleName, missing, unexpected, mismatches))
            {
                MissingKeys = missing;
                UnexpectedKeys = unexpected;
                SizeMismatches = mismatches;
            }

            public IReadOnlyList<string> MissingKeys { get; }
            public IReadOnlyList<string> UnexpectedKeys { get; }
            public IReadOnlyList<SizeMismatch> SizeMismatches { get; }

            // PyTorch's wording, one line per kind of error.
            private static string Describe(string moduleName, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected,
                IReadOnlyList<SizeMismatch> mismatches)
            {
                static string Quote(IEnumerable<string> keys) => string.Join(", ", keys.Select(k => $"\"{k}\""));
                static string Shape(long[] s) => "[" + string.Join(", ", s) + "]";
                var sb = new StringBuilder($"Error(s) in loading state_dict for {moduleName}:");
                if (missing.Count > 0) sb.Append("\n\tMissing key(s) in state_dict: ").Append(Quote(missing)).Append('.');
                if (unexpected.Count > 0) sb.Append("\n\tUnexpected key(s) in state_dict: ").Append(Quote(unexpected)).Append('.');
                foreach (var m in mismatches)
                    sb.Append($"\n\tsize mismatch for {m.Key}: copying a param with shape {Shape(m.FoundShape)} from checkpoint, ")
                        .Append($"the shape in current model is {Shape(m.ExpectedShape)}.");
                return sb.ToString();
            }
        }
    }
}
