using System.Collections;
using System.Globalization;

namespace Peft.Torch;

public static partial class torch
{
    public static partial class nn
    {
        /// <summary>Modules applied in order; children are named "0", "1", ...</summary>
        public sealed class Sequential : Module<Tensor, Tensor>, IReadOnlyList<Module<Tensor, Tensor>>
        {
            private readonly List<Module<Tensor, Tensor>> _layers = new();

            public Sequential(params IEnumerable<Module<Tensor, Tensor>> modules)
            {
                foreach (var m in modules) append(m);
            }

            public Sequential append(Module<Tensor, Tensor> module)
            {
                _layers.Add(RegisterModule(_layers.Count.ToString(CultureInfo.InvariantCulture), module));
                return this;
            }

            public Module<Tensor, Tensor> this[int index] => _layers[index];
            public int Count => _layers.Count;
            public IEnumerator<Module<Tensor, Tensor>> GetEnumerator() => _layers.GetEnumerator();
            IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

            /// <summary>
            /// Chains the layers. Intermediate results are left to the caller's dispose scope (a layer may
            /// keep or return what it was given), as are the results of every layer.
            /// </summary>
            public override Tensor forward(Tensor input)
            {
                var x = input;
                foreach (var layer in _layers) x = layer.call(x);
                return ReferenceEquals(x, input) ? Layers.Alias(input) : x;
            }
        }

        /// <summary>An indexable list of child modules named "0", "1", ... (no forward of its own).</summary>
        public class ModuleList<T> : Module, IReadOnlyList<T> where T : Module
        {
            private readonly List<T> _items = new();

            public ModuleList(params IEnumerable<T> modules)
            {
                foreach (var m in modules) append(m);
            }

            public ModuleList<T> append(T module)
            {
                _items.Add(RegisterModule(_items.Count.ToString(CultureInfo.InvariantCulture), module));
                return this;
            }

            public T this[int index] => _items[index];
            public int Count => _items.Count;
            public IEnumerator<T> GetEnumerator() => _items.GetEnumerator();
            IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
        }

        /// <summary>A list of modules of any type.</summary>
        public sealed class ModuleList(params IEnumerable<Module> modules) : ModuleList<Module>(modules);
    }
}
