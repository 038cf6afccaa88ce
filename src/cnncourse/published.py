"""Published results the book compares against: the ImageNet challenge's winners.

These numbers come from papers and from the challenge's results pages, not from
a computation, so they are typed here once, each with the key of its entry in
the book's ``references.bib``; chapters 11 (LeNet and AlexNet) and 16 (Comparing
architectures) both draw them from here and cannot disagree.

The classification task of ILSVRC scored an entry by its **top-5 error** on the
challenge's test images. Teams could submit several entries, some trained only
on the challenge's 1.28 million training images and some with extra data; the
organisers' overview (Russakovsky et al. 2015) compares the winners' entries
trained on the supplied data, and so does :data:`ILSVRC_WINNERS`. In 2012 that
is SuperVision's 16.4% (an average of five AlexNets); its entry with networks
pretrained on the larger ImageNet Fall 2011 release reached 15.3%, the figure in
the abstract of Krizhevsky et al. (2012), which lists both in its table 2
(:data:`ILSVRC_2012_EXTRA_DATA`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HUMAN_TOP5", "ILSVRC_2012_EXTRA_DATA", "ILSVRC_2014_RUNNER_UP", "ILSVRC_WINNERS", "IlsvrcEntry"]


@dataclass(frozen=True)
class IlsvrcEntry:
    """One entry of the ILSVRC classification task.

    Attributes:
        year: The edition.
        team: The team's name in the results.
        network: The network behind the entry, if it was a CNN.
        layers: Weight layers of its deepest network (None: not a CNN).
        top5: Top-5 error on the test images, in percent.
        extra_data: Trained with images beyond the challenge's training set.
        source: Key of the citation in ``references.bib``.
    """

    year: int
    team: str
    network: str | None
    layers: int | None
    top5: float
    extra_data: bool
    source: str

    @property
    def label(self) -> str:
        """``"SuperVision (AlexNet)"``, or the team alone."""
        return f"{self.team} ({self.network})" if self.network and self.network != self.team else self.team


#: The winner of each year's classification task, the entry trained on the challenge's data only.
ILSVRC_WINNERS: tuple[IlsvrcEntry, ...] = (
    IlsvrcEntry(2010, "NEC-UIUC", None, None, 28.2, False, "russakovsky2015imagenet"),
    IlsvrcEntry(2011, "XRCE", None, None, 25.8, False, "russakovsky2015imagenet"),
    IlsvrcEntry(2012, "SuperVision", "AlexNet", 8, 16.4, False, "krizhevsky2012imagenet"),
    IlsvrcEntry(2013, "Clarifai", "ZFNet", 8, 11.7, False, "russakovsky2015imagenet"),
    IlsvrcEntry(2014, "GoogLeNet", "GoogLeNet", 22, 6.67, False, "szegedy2015going"),
    IlsvrcEntry(2015, "MSRA", "ResNet", 152, 3.57, False, "he2016deep"),
    IlsvrcEntry(2016, "Trimps-Soushen", None, None, 2.99, False, "ilsvrc2016results"),
    IlsvrcEntry(2017, "WMW", "SENet", 154, 2.25, False, "hu2018squeeze"),
)

#: SuperVision's other 2012 entry: pretrained on ImageNet Fall 2011, then fine-tuned (Krizhevsky et al., table 2).
ILSVRC_2012_EXTRA_DATA = IlsvrcEntry(2012, "SuperVision", "AlexNet", 8, 15.3, True, "krizhevsky2012imagenet")

#: VGG's ensemble, second in 2014's classification task (first in localization).
ILSVRC_2014_RUNNER_UP = IlsvrcEntry(2014, "VGG", "VGG", 19, 7.3, False, "simonyan2015very")

#: Top-5 error of a trained human annotator on 1500 test images (Russakovsky et al. 2015), in percent.
HUMAN_TOP5 = 5.1
