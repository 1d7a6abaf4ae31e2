"""MARDM's (MoMask's) text -> token-length classifier, `LengthEstimator(input_size, output_size)`."""
import torch.nn as nn


class LengthEstimator(nn.Module):
    def __init__(self, input_size=512, output_size=50):
        super().__init__()
        nd = 512
        self.output = nn.Sequential(
            nn.Linear(input_size, nd), nn.LayerNorm(nd), nn.LeakyReLU(0.2, inplace=True),
            nn.Dropout(0.2), nn.Linear(nd, nd // 2), nn.LayerNorm(nd // 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Dropout(0.2), nn.Linear(nd // 2, nd // 4), nn.LayerNorm(nd // 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(nd // 4, output_size),
        )

    def forward(self, text_emb):
        """(B, input_size) raw text features -> (B, output_size) logits over token lengths."""
        return self.output(text_emb)
