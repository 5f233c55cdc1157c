"""optical: optimal-transport distillation for cross-lingual retrieval.

Implements OPTICAL (Huang, Yu, Allan. "Improving Cross-lingual Information
Retrieval on Low-Resource Languages via Optimal Transport Distillation",
WSDM 2023, arXiv:2301.12566) beside the standard knowledge-distillation
baselines, and evaluates them on XQuAD / XQuAD-R.

Packages, in dependency order (imports only point downward):
data -> models -> ot -> losses -> train -> eval -> study -> report; ``cli`` is
a thin layer over all of them.
"""

__version__ = "0.1.0"
