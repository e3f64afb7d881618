"""Numbers computed from predictions.

AUC/accuracy, the c-index and survival losses, bootstrap intervals and DeLong's test.
"""
