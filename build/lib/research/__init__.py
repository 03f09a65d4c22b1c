"""init-scale research: is the Xavier/He init variance the optimum, and where is it?"""

__version__ = "0.1.0"
