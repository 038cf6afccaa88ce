"""``python -m cnncourse.data``: fetch Fashion-MNIST and say where it is."""

from .fashion import main

main()
