"""torch.utils.data.dataloader's names (defined in gcomp.data.dataloader)."""

from gcomp.data.dataloader import DataLoader, default_collate, default_convert  # noqa: F401
