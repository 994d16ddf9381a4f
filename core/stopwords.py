"""Spanish stop words: what the topics report drops from first messages before counting words.

Written without accents (``core.reports`` matches a word by its accent-stripped lowercase form),
so ``está`` and ``esta`` are both dropped.  Besides the grammatical words (articles, pronouns,
prepositions, conjunctions, common verb forms of ser / estar / haber / tener / ir / poder), the
list holds the greetings and courtesies a first message on a contact channel almost always
carries ("hola", "buenas", "gracias", "favor"), which would otherwise top every queue.
"""

from __future__ import annotations

from typing import Final

__all__ = ["SPANISH_STOP_WORDS"]

SPANISH_STOP_WORDS: Final = frozenset(
    """
    a al algo alguien algun alguna algunas alguno algunos alla alli ante antes aqui asi aun aunque
    bajo bien cada casi como con contra cual cuales cualquier cuando cuanto de del desde donde dos
    durante e el ella ellas ello ellos en entonces entre era eramos eran eres es esa esas ese eso
    esos esta estaba estaban estado estamos estan estar estas este esto estos estoy fue fueron fui
    ha habia habian han has hasta hay he hemos hoy la las le les lo los mas me mi mia mias mio mios
    mis mismo mucho muchos muy nada ni no nos nosotras nosotros nuestra nuestro o os otra otras
    otro otros para pero poco por porque pues que quien quienes se sea sean segun ser si sido sin
    sino so sobre sois solo somos son soy su sus suya suyo tal tambien tan tanto te tener tengo
    tenemos tiene tienen ti tu tus tuya tuyo u un una unas uno unos usted ustedes va vamos van
    vez voy vos y ya yo
    puedo puede pueden podria quiero quiere quisiera necesito necesita hacer hace hago tengan
    hola buenas buenos dias tardes noches gracias favor saludos buen dia ok okay vale
    """.split()
)
