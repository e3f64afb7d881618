"""Samplers that decide which regions form a batch."""
from .slide_batching import plan_epoch, shuffled_regions, slide_batches
from .slide_sampler import SlideAwareSampler, check_slide_batch_size

__all__ = ['SlideAwareSampler', 'check_slide_batch_size', 'plan_epoch', 'shuffled_regions',
           'slide_batches']
