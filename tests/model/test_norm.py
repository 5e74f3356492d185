import torch

from worldsim.model.norm import RMSNorm


def test_rmsnorm_matches_torch_and_follows_the_input_dtype():
    torch.manual_seed(0)
    norm = RMSNorm(32)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    reference = torch.nn.RMSNorm(32)
    reference.load_state_dict(norm.state_dict())
    x = torch.randn(4, 7, 32)
    assert torch.equal(norm(x), reference(x))  # float32: the same op
    y = norm(x.bfloat16())
    assert y.dtype == torch.bfloat16 and norm.weight.dtype == torch.float32
    torch.testing.assert_close(y.float(), reference(x), atol=3e-2, rtol=3e-2)
