"""Host workflows built on both training and export (``edgesleep.workflows``, behind the
train and export extras): the end-to-end demo and the build of the shipped heart models.
The layers import downward only: the runtime (``edgesleep``) < ``edgesleep.train`` <
``edgesleep.export`` < ``edgesleep.workflows`` < the CLI."""
