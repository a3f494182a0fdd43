using System.Globalization;
using static Peft.Torch.torch.nn;

namespace Peft.Torch;

public static partial class torch
{
    /// <summary>Optimizers and learning-rate schedules (torch.optim).</summary>
    public static partial class optim
    {
        /// <summary>
        /// A set of parameters with its own hyperparameters (PyTorch's param_groups entries). Options left
        /// unset take the optimizer's defaults when the group is given to it. <see cref="initial_lr"/> is the
        /// group's base learning rate, which schedules scale.
        /// </summary>
        public class ParamGroup
        {
            private readonly Dictionary<string, double> _options = new();

            public ParamGroup(IEnumerable<Parameter> parameters, double? lr = null, double? weight_decay = null)
            {
                this.parameters = parameters.ToList();
                SetOption("lr", lr);
                SetOption("weight_decay", weight_decay);
            }

            public IReadOnlyList<Parameter> parameters { get; }

            /// <summary>Every hyperparameter of the group by name (lr, weight_decay, momentum, beta1, ...).</summary>
            public IReadOnlyDictionary<string, double> options => _options;

            public double this[string option]
            {
                get => _options.TryGetValue(option, out var v) ? v
                    : throw new KeyNotFoundException($"parameter group has no option '{option}' (give it to an optimizer to fill defaults)");
                set => _options[option] = value;
            }

            public double lr { get => this["lr"]; set => this["lr"] = value; }
            public double weight_decay { get => this["weight_decay"]; set => this["weight_decay"] = value; }
            public double initial_lr { get => this["initial_lr"]; set => this["initial_lr"] = value; }

            /// <summary>Sets an option when a value is given (subclasses' typed constructors use it).</summary>
            protected void SetOption(string option, double? value)
            {
                if (value is { } v) _options[option] = v;
            }

            internal void ApplyDefaults(IReadOnlyDictionary<string, double> defaults)
            {
                foreach (var (name, value) in defaults) _options.TryAdd(name, value);
                _options.TryAdd("initial_lr", lr);
            }
        }

        /// <summary>Per-parameter optimizer state: a step count and named tensors (momentum_buffer, exp_avg, ...).</summary>
        public sealed class ParamState
        {
            public long step { get; set; }
            public Dictionary<string, Tensor> tensors { get; } = new();

            /// <summary>Stores <paramref name="value"/> (taking it out of dispose scopes) and returns it.</summary>
            public Tensor Set(string name, Tensor value)
            {
                if (tensors.Remove(name, out var old) && !ReferenceEquals(old, value)) old.Dispose();
                tensors[name] = value.DetachFromDisposeScope();
                return value;
            }

            /// <summary>The tensor <paramref name="name"/>, created as zeros like <paramref name="like"/> on first use.</summary>
            public Tensor GetOrZeros(string name, Tensor like) =>
                tensors.TryGetValue(name, out var t) ? t : Set(name, zeros(like.shape, like.dtype, like.device));

            internal void Clear()
            {
                foreach (var t in tensors.Values) t.Dispose();
                tensors.Clear();
                step = 0;
            }
        }

        /// <summary>
        /// An optimizer's checkpoint: per-parameter state tensors under "state.{i}.{name}" and numbers under
        /// "state.{i}.step" and "param_groups.{g}.{option}", where i counts parameters across the groups in
        /// order (PyTorch's numbering). The tensors are copies, so later steps do not change a saved state.
        /// </summary>
        public sealed class OptimizerStateDict : IDisposable
        {
            public OrderedDictionary<string, Tensor> tensors { get; } = new();
            public OrderedDictionary<string, double> scalars { get; } = new();

            public void Dispose()
            {
                foreach (var t in tensors.Values) t.Dispose();
            }
        }

        /// <summary>Base of the optimizers: parameter groups, per-parameter state, zero_grad and checkpoints.</summary>
        public abstract class Optimizer : IDisposable
        {
            private readonly List<ParamGroup> _groups;
            private readonly Dictionary<Parameter, ParamState> _state = new(ReferenceEqualityComparer.Instance);

            protected Optimizer(IEnumerable<ParamGroup> groups, IReadOnlyDictionary<string, double> defaults)
            {
                _groups = groups.ToList();
                foreach (var g in _groups) g.ApplyDefaults(defaults);
                var all = _groups.SelectMany(g => g.parameters).ToList();
                if (all.Count == 0) throw new ArgumentException("optimizer got an empty parameter list");
                if (all.Distinct(ReferenceEqualityComparer.Instance).Count() != all.Count)
                    throw new ArgumentException("some parameters appear in more than one parameter group");
                foreach (var g in _groups)
                {
                    CheckNonNegative(g, "lr");
                    CheckNonNegative(g, "weight_decay");
                }
            }

            protected static void CheckNonNegative(ParamGroup group, string option)
            {
                if (!(group[option] >= 0)) throw new ArgumentOutOfRangeException(option, group[option], $"invalid {option}");
            }

            public IReadOnlyList<ParamGroup> param_groups => _groups;

            /// <summary>Applies one update to every parameter that has a gradient.</summary>
            public abstract void step();

            /// <summary>Clears the gradients of every parameter (set_to_none=True).</summary>
            public void zero_grad()
            {
                foreach (var p in _groups.SelectMany(g => g.parameters)) p.grad = null;
            }

            /// <summary>The state of <paramref name="parameter"/>, created empty on first use.</summary>
            public ParamState state(Parameter parameter)
            {
                if (!_state.TryGetValue(parameter, out var s)) _state[parameter] = s = new ParamState();
                return s;
            }

            /// <summary>Runs <paramref name="update"/> for each parameter with a gradient, under no_grad in a dispose scope.</summary>
            /// <remarks>
            /// One dispose scope per parameter: an update's temporaries (weight decay added to the gradient, say) are
            /// released before the next parameter's, so a step never holds a model-sized set of them (as PyTorch's
            /// per-tensor loop does not). State tensors detach themselves from the scope.
            /// </remarks>
            protected void ForEachGradient(Action<ParamGroup, Parameter, Tensor> update)
            {
                using var noGrad = no_grad();
                foreach (var group in _groups)
                    foreach (var p in group.parameters)
                        using (NewDisposeScope())
                            if (p.grad is { } grad) update(group, p, grad);
            }

            public OptimizerStateDict state_dict()
            {
                var result = new OptimizerStateDict();
                for (var g = 0; g < _groups.Count; g++)
                {
                    result.scalars[$"param_groups.{g}.num_params"] = _groups[g].parameters.Count;
                    foreach (var (option, value) in _groups[g].options) result.scalars[$"param_groups.{g}.{option}"] = value;
                }
                var i = 0;
                foreach (var p in _groups.SelectMany(g => g.parameters))
                {
                    if (_state.TryGetValue(p, out var s))
                    {
                        result.scalars[$"state.{i}.step"] = s.step;
                        foreach (var (name, t) in s.tensors) result.tensors[$"state.{i}.{name}"] = t.clone();
                    }
                    i++;
                }
                return result;
            }

            /// <summary>
            /// Restores hyperparameters and per-parameter state saved by <see cref="state_dict"/> from an
            /// optimizer over parameters of the same shapes in the same groups. Tensors are copied to each
            /// parameter's device; state the checkpoint lacks is cleared.
            /// </summary>
            public void load_state_dict(OptimizerStateDict state)
            {
                for (var g = 0; g < _groups.Count; g++)
                    if (!state.scalars.TryGetValue($"param_groups.{g}.num_params", out var n) || (int)n != _groups[g].parameters.Count)
                        throw new ArgumentException($"the saved optimizer state does not match parameter group {g} " +
                            $"({_groups[g].parameters.Count} parameters here)");
                if (state.scalars.ContainsKey($"param_groups.{_groups.Count}.num_params"))
                    throw new ArgumentException($"the saved optimizer state has more than {_groups.Count} parameter groups");

                var parameters = _groups.SelectMany(g => g.parameters).ToList();
                foreach (var s in _state.Values) s.Clear();
                foreach (var (key, value) in state.scalars)
                {
                    var (kind, index, name) = ParseKey(key);
                    if (kind == "param_groups" && name != "num_params") _groups[index][name] = value;
                    else if (kind == "state") this.state(ParameterAt(parameters, index, key)).step = (long)value;
                }
                using var noGrad = no_grad();
                foreach (var (key, t) in state.tensors)
                {
                    var (kind, index, name) = ParseKey(key);
                    if (kind != "state") throw new ArgumentException($"unexpected optimizer state tensor '{key}'");
                    var p = ParameterAt(parameters, index, key);
                    this.state(p).Set(name, t.to(p.device));
                }
            }

            private static Parameter ParameterAt(List<Parameter> parameters, int index, string key) =>
                index < parameters.Count ? parameters[index]
                    : throw new ArgumentException($"optimizer state '{key}' refers to parameter {index} of {parameters.Count}");

            private static (string kind, int index, string name) ParseKey(string key)
            {
                var parts = key.Split('.');
                if (parts.Length != 3 || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var index))
                    throw new ArgumentException($"malformed optimizer state key '{key}'");
                return (parts[0], index, parts[2]);
            }

            public void Dispose()
            {
                foreach (var s in _state.Values) s.Clear();
                _state.Clear();
                GC.SuppressFinalize(this);
            }
        }
    }
}
