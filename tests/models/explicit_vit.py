"""Test references for the grid ViTs: larger random weights, and their pre-norm blocks
written out with explicit softmax attention (one grid, tokens ``(t, E)``)."""
import torch
import torch.nn.functional as F


def perturbed(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` in eval mode with noise (std 0.1) added to every parameter, so that
    every term of the forward matters (the init leaves biases at 0)."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def explicit_blocks(sd: dict, tok: torch.Tensor, bias: torch.Tensor, depth: int,
                    heads: int) -> torch.Tensor:
    """Tokens ``(t, E)`` through ``depth`` blocks of state dict ``sd`` (keys
    ``blocks.k.*``) with the attention bias ``(heads, t, t)``, then the final ``norm``."""
    t, e = tok.shape
    for k in range(depth):
        p = lambda n: sd[f'blocks.{k}.{n}']  # noqa: E731
        y = F.layer_norm(tok, (e,), p('norm1.weight'), p('norm1.bias'), eps=1e-6)
        q, kk, v = (y @ p('attn.qkv.weight').T + p('attn.qkv.bias')).reshape(
            t, 3, heads, e // heads).permute(1, 2, 0, 3)  # each (h, t, d)
        att = torch.softmax(q @ kk.transpose(-1, -2) / (e // heads) ** 0.5 + bias, -1)
        tok = tok + (att @ v).transpose(0, 1).reshape(t, e) @ p('attn.proj.weight').T \
            + p('attn.proj.bias')
        y = F.layer_norm(tok, (e,), p('norm2.weight'), p('norm2.bias'), eps=1e-6)
        y = F.gelu(y @ p('mlp.fc1.weight').T + p('mlp.fc1.bias'))
        tok = tok + y @ p('mlp.fc2.weight').T + p('mlp.fc2.bias')
    return F.layer_norm(tok, (e,), sd['norm.weight'], sd['norm.bias'], eps=1e-6)
