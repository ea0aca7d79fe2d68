namespace Microsoft.ML.Residual.Weights;

/// <summary>
/// A module that knows older names of its state-dict keys. <see cref="StateDict.Load(TorchSharp.torch.nn.Module, string, bool, StateDictLoadOptions?)"/> passes every file key
/// (after <see cref="StateDictLoadOptions.MapKey"/>) through <see cref="UpgradeKey"/>, so checkpoints written
/// with the old names load without options.
/// </summary>
public interface IStateDictKeyUpgrade
{
    /// <summary>Returns the current name for <paramref name="key"/>, or <paramref name="key"/> itself when it is current.</summary>
    string UpgradeKey(string key);
}
