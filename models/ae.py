"""MARDM's continuous 1-D convolutional motion autoencoder (`AE_models['AE_Model']`).

Encoder (B,T,67) -> latents (B,C,T/4) channels-first; decoder back to (B,4L,67) channels-last.
Both Resnet1D stacks use dilations [9, 3, 1]: the reference's `reverse_dilation` defaults to True
and the encoder does not pass it.
"""
import torch.nn as nn


class ResConv1DBlock(nn.Module):
    def __init__(self, width, dilation, dropout=0.2):
        super().__init__()
        self.activation1 = nn.ReLU()
        self.conv1 = nn.Conv1d(width, width, 3, 1, padding=dilation, dilation=dilation)
        self.activation2 = nn.ReLU()
        self.conv2 = nn.Conv1d(width, width, 1, 1, 0)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        h = self.conv2(self.activation2(self.conv1(self.activation1(x))))
        return x + self.dropout(h)


class Resnet1D(nn.Module):
    def __init__(self, width, depth, dilation_growth_rate=1, reverse_dilation=True):
        super().__init__()
        dilations = [dilation_growth_rate ** d for d in range(depth)]
        if reverse_dilation:
            dilations = dilations[::-1]
        self.model = nn.Sequential(*[ResConv1DBlock(width, d) for d in dilations])

    def forward(self, x):
        return self.model(x)


class Encoder(nn.Module):
    def __init__(self, input_emb_width, output_emb_width, down_t, stride_t, width, depth, dilation_growth_rate):
        super().__init__()
        filter_t, pad_t = stride_t * 2, stride_t // 2
        blocks = [nn.Conv1d(input_emb_width, width, 3, 1, 1), nn.ReLU()]
        for _ in range(down_t):
            blocks.append(nn.Sequential(
                nn.Conv1d(width, width, filter_t, stride_t, pad_t),
                Resnet1D(width, depth, dilation_growth_rate),
            ))
        blocks.append(nn.Conv1d(width, output_emb_width, 3, 1, 1))
        self.model = nn.Sequential(*blocks)

    def forward(self, x):
        return self.model(x)


class Decoder(nn.Module):
    def __init__(self, input_emb_width, output_emb_width, down_t, width, depth, dilation_growth_rate):
        super().__init__()
        blocks = [nn.Conv1d(output_emb_width, width, 3, 1, 1), nn.ReLU()]
        for _ in range(down_t):
            blocks.append(nn.Sequential(
                Resnet1D(width, depth, dilation_growth_rate, reverse_dilation=True),
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv1d(width, width, 3, 1, 1),
            ))
        blocks += [nn.Conv1d(width, width, 3, 1, 1), nn.ReLU(), nn.Conv1d(width, input_emb_width, 3, 1, 1)]
        self.model = nn.Sequential(*blocks)

    def forward(self, x):
        return self.model(x).permute(0, 2, 1)


class AE(nn.Module):
    def __init__(self, input_width=67, output_emb_width=512, down_t=2, stride_t=2, width=512, depth=3,
                 dilation_growth_rate=3, activation="relu", norm=None):
        super().__init__()
        if activation != "relu" or norm is not None:
            raise ValueError(f"AE supports activation='relu', norm=None only (got {activation!r}, {norm!r})")
        self.output_emb_width = output_emb_width
        self.encoder = Encoder(input_width, output_emb_width, down_t, stride_t, width, depth, dilation_growth_rate)
        self.decoder = Decoder(input_width, output_emb_width, down_t, width, depth, dilation_growth_rate)

    def encode(self, x):
        """(B,T,D) motion features -> (B,C,L) latents."""
        return self.encoder(x.permute(0, 2, 1).float())

    def decode(self, z):
        """(B,C,L) latents -> (B,4L,D) motion features."""
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))


AE_models = {"AE_Model": lambda **kwargs: AE(**kwargs)}
