namespace Peft.Torch;

public static partial class torch
{
    public static partial class nn
    {
        /// <summary>
        /// A trainable tensor of a module (torch.nn.Parameter): a leaf that requires grad by default and
        /// shares storage with the tensor it was made from. Parameters belong to their module, never to a
        /// dispose scope; disposing the module releases them.
        /// </summary>
        public sealed class Parameter : Tensor
        {
            public Parameter(Tensor data, bool requires_grad = true) : base(DetachedHandle(data))
            {
                DetachFromDisposeScope();
                this.requires_grad = requires_grad;
            }

            // A new handle on data.detach(): same storage, no autograd history, so it can be a leaf.
            private static nint DetachedHandle(Tensor data)
            {
                using var detached = data.detach();
                return Native.Check(Native.peft_tensor_alias(detached.Handle));
            }

            public override string ToString() => "Parameter" + base.ToString()["Tensor".Length..];
        }
    }
}
