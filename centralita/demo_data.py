"""The made-up world of `centralita demo`, as data: the two businesses the shipped flows serve (brands,
queues, agents and their shifts), what their customers call about and how they answer each question of
a flow, how calls spread over the hours and days, the names people are given, and the texts of the
messages and emails they exchange. The generator that lives it through the real code is
`centralita.demo`; nothing here draws a random number or touches a database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

# --- the two businesses the shipped flows serve -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str
    display: str
    service_level_seconds: int
    service_level_percent: int = 80
    wrap_up_seconds: int = 30
    talk_median: float = 240.0  # seconds
    mean_wait: float = 25.0  # seconds, at an ordinary hour


@dataclass(frozen=True, slots=True)
class AgentSpec:
    name: str
    display: str
    brand: str
    extension: int
    skills: tuple[str, ...]
    shift: Literal["early", "late"]
    saturday: bool = False


@dataclass(frozen=True, slots=True)
class Brand:
    key: str  # the flow's name
    company: str
    country: str
    zone: ZoneInfo
    called: str  # the number customers dial
    sms_from: str
    email_domain: str
    schedule: str  # the flow's business-hours schedule
    case_node: str  # the flow's "are you calling about your open case?" menu
    early: tuple[int, int]  # shift hours, local
    late: tuple[int, int]
    saturday: tuple[int, int]


BRANDS: dict[str, Brand] = {
    "banco_es": Brand(
        "banco_es",
        "Banco Meridiano",
        "ES",
        ZoneInfo("Europe/Madrid"),
        "+34912345678",
        "+34911234567",
        "meridiano.example",
        "atencion_cliente",
        "caso_abierto",
        (8, 15),
        (13, 20),
        (9, 14),
    ),
    "support_en": Brand(
        "support_en",
        "Northwind Broadband",
        "GB",
        ZoneInfo("Europe/London"),
        "+442071234567",
        "+447700900123",
        "northwind.example",
        "support",
        "case_menu",
        (8, 15),
        (13, 20),
        (9, 17),
    ),
}

QUEUES: dict[str, QueueSpec] = {
    q.name: q
    for q in (
        QueueSpec("atencion_general", "Atención general", 20, talk_median=200, mean_wait=30),
        QueueSpec("facturacion", "Facturación", 30, talk_median=260, mean_wait=28),
        QueueSpec("averias", "Averías", 20, talk_median=320, mean_wait=22),
        QueueSpec("incidencias", "Incidencias abiertas", 30, talk_median=300, mean_wait=25),
        QueueSpec("banca_privada", "Banca privada", 10, 90, 60, talk_median=420, mean_wait=6),
        QueueSpec("ventas", "Ventas (salientes)", 20, talk_median=240),
        QueueSpec("support", "Support", 20, talk_median=220, mean_wait=30),
        QueueSpec("billing", "Billing", 30, talk_median=280, mean_wait=26),
        QueueSpec("technical", "Technical support", 30, 75, 45, talk_median=480, mean_wait=35),
        QueueSpec("priority", "Priority support", 10, 90, talk_median=360, mean_wait=6),
        QueueSpec("retention", "Retention (outbound)", 20, talk_median=300),
    )
}

AGENTS: tuple[AgentSpec, ...] = (
    AgentSpec(
        "lucia.garcia",
        "Lucía García",
        "banco_es",
        1001,
        ("facturacion", "atencion_general", "incidencias"),
        "early",
        True,
    ),
    AgentSpec("javier.martin", "Javier Martín", "banco_es", 1002, ("averias", "atencion_general"), "early"),
    AgentSpec("carmen.lopez", "Carmen López", "banco_es", 1003, ("facturacion", "incidencias"), "late"),
    AgentSpec(
        "david.sanchez",
        "David Sánchez",
        "banco_es",
        1004,
        ("averias", "incidencias", "atencion_general"),
        "late",
    ),
    AgentSpec("marta.romero", "Marta Romero", "banco_es", 1005, ("banca_privada", "facturacion"), "early"),
    AgentSpec(
        "pablo.navarro", "Pablo Navarro", "banco_es", 1006, ("atencion_general", "averias"), "late", True
    ),
    AgentSpec("elena.torres", "Elena Torres", "banco_es", 1007, ("facturacion", "atencion_general"), "early"),
    AgentSpec(
        "laura.jimenez",
        "Laura Jiménez",
        "banco_es",
        1008,
        ("incidencias", "facturacion", "banca_privada"),
        "late",
    ),
    AgentSpec(
        "sergio.ruiz",
        "Sergio Ruiz",
        "banco_es",
        1009,
        ("averias", "atencion_general", "facturacion"),
        "early",
        True,
    ),
    AgentSpec("alvaro.moreno", "Álvaro Moreno", "banco_es", 1101, ("ventas",), "early"),
    AgentSpec("irene.castro", "Irene Castro", "banco_es", 1102, ("ventas",), "late"),
    AgentSpec("raul.ortega", "Raúl Ortega", "banco_es", 1103, ("ventas", "atencion_general"), "late"),
    AgentSpec("oliver.smith", "Oliver Smith", "support_en", 2001, ("technical", "support"), "early", True),
    AgentSpec("amelia.jones", "Amelia Jones", "support_en", 2002, ("billing", "support"), "early"),
    AgentSpec("harry.taylor", "Harry Taylor", "support_en", 2003, ("technical",), "late"),
    AgentSpec("isla.brown", "Isla Brown", "support_en", 2004, ("billing", "priority"), "late", True),
    AgentSpec("jack.wilson", "Jack Wilson", "support_en", 2005, ("technical", "support"), "early"),
    AgentSpec(
        "emily.davies", "Emily Davies", "support_en", 2006, ("support", "billing", "technical"), "late"
    ),
    AgentSpec("george.evans", "George Evans", "support_en", 2007, ("technical", "priority"), "early"),
    AgentSpec(
        "sophie.thomas", "Sophie Thomas", "support_en", 2008, ("priority", "support", "billing"), "late"
    ),
    AgentSpec("noah.roberts", "Noah Roberts", "support_en", 2101, ("retention",), "early"),
    AgentSpec("grace.walker", "Grace Walker", "support_en", 2102, ("retention",), "late"),
)


@dataclass(frozen=True, slots=True)
class CampaignCopy:
    """What an outbound campaign of a brand is called and says, and the list it dials."""

    name: str
    queue: str
    abandon_message: str  # played when a live answer finds no free agent
    list_filename: str
    bad_row: str  # a row the list import must refuse


CAMPAIGNS: dict[str, CampaignCopy] = {
    "banco_es": CampaignCopy(
        "Meridiano: renovación de tarjetas",
        "ventas",
        "Le ha llamado Banco Meridiano. Para hablar con nosotros, llame al 911 234 567.",
        "renovacion_tarjetas.csv",
        "12345,Número mal copiado,,",
    ),
    "support_en": CampaignCopy(
        "Northwind full-fibre upgrade",
        "retention",
        "This is Northwind Broadband. Sorry we missed you: call us back on 020 7123 4567.",
        "fibre_upgrade.csv",
        "12345,Bad number,,",
    ),
}


# --- what people call about -------------------------------------------------------------------------

FollowUp = Literal["email", "sms", "whatsapp", "switch", "call"]


@dataclass(frozen=True, slots=True)
class Topic:
    """A reason to get in touch, and how a caller with it answers each question of the flow."""

    key: str
    brand: str
    weight: float
    keys: Mapping[str, str]  # node -> the key pressed ("<card>", "<dob>", "<order>": the caller's own)
    said: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # node -> ways of saying it
    subjects: tuple[str, ...] = ()  # a case's subject; empty: no case of its own
    case_share: float = 1.0  # of the handled contacts, those that open a case
    fcr: float = 0.6  # of the cases, those the first agent resolves
    follow_ups: tuple[FollowUp, ...] = ("email",)


# What every caller of a brand answers where their topic says nothing.
DEFAULT_KEYS: dict[str, dict[str, str]] = {
    "banco_es": {
        "caso_abierto": "2",
        "menu_principal": "0",
        "fuera_de_horario": "1",
        "averias": "2",
        "ofrecer_llamada": "2",
        "ofrecer_llamada_facturacion": "2",
        "pedir_tarjeta": "<card>",
        "pedir_fecha": "<dob>",
    },
    "support_en": {
        "case_menu": "2",
        "main_menu": "0",
        "after_hours": "1",
        "tech_menu": "2",
        "callback_offer": "2",
        "order_number": "<order>",
    },
}
DEFAULT_SAID: dict[str, dict[str, tuple[str, ...]]] = {
    "banco_es": {
        "caso_abierto": ("otra gestión", "es por otra cosa"),
        "fuera_de_horario": ("dejar un mensaje",),
    },
    "support_en": {
        "case_menu": ("something else", "it's a new problem"),
        "after_hours": ("leave a message",),
    },
}

TOPICS: tuple[Topic, ...] = (
    Topic(
        "saldo",
        "banco_es",
        0.20,
        {"menu_principal": "1", "fuera_de_horario": "2"},
        {"menu_principal": ("saldo", "quiero consultar mi saldo", "cuánto dinero tengo", "movimientos")},
    ),
    Topic(
        "facturacion",
        "banco_es",
        0.26,
        {"menu_principal": "2", "ofrecer_llamada_facturacion": "1", "fuera_de_horario": "1"},
        {"menu_principal": ("facturación", "tengo una duda con un recibo", "me han cobrado una comisión")},
        (
            "Cargo no reconocido en el extracto",
            "Comisión de mantenimiento cobrada por error",
            "Recibo domiciliado devuelto",
        ),
        1.0,
        0.55,
        ("email", "sms", "switch"),
    ),
    Topic(
        "averia",
        "banco_es",
        0.18,
        {"menu_principal": "3", "averias": "2"},
        {
            "menu_principal": ("avería", "la banca online no funciona", "no funciona"),
            "averias": ("otra avería", "no puedo entrar", "la app"),
        },
        (
            "No puede acceder a la banca online",
            "El cajero no entregó el efectivo",
            "La app se cierra al entrar",
        ),
        1.0,
        0.5,
        ("whatsapp", "switch", "call"),
    ),
    Topic(
        "tarjeta",
        "banco_es",
        0.08,
        {"menu_principal": "3", "averias": "1", "fuera_de_horario": "3"},
        {
            "menu_principal": ("tarjeta bloqueada", "avería"),
            "averias": ("bloquear tarjeta", "me han robado la tarjeta"),
        },
        ("Bloqueo de tarjeta por robo o pérdida",),
        1.0,
        0.0,
        ("email",),
    ),
    Topic(
        "agente",
        "banco_es",
        0.18,
        {"menu_principal": "0", "ofrecer_llamada": "1"},
        {"menu_principal": ("hablar con un agente", "agente", "quiero hablar con una persona")},
        ("Consulta sobre hipoteca", "Cambio de domicilio", "Alta de un nuevo titular"),
        0.4,
        0.8,
        ("email", "call"),
    ),
    Topic(
        "incidencia",
        "banco_es",
        0.0,
        {"caso_abierto": "1", "menu_principal": "0"},
        {"caso_abierto": ("por la incidencia", "llamo por mi caso"), "menu_principal": ("agente",)},
    ),
    Topic(
        "no_internet",
        "support_en",
        0.22,
        {"main_menu": "1", "tech_menu": "1", "after_hours": "2"},
        {
            "main_menu": ("technical support", "my internet is down", "no internet"),
            "tech_menu": ("no connection", "the internet is down", "outage"),
            "after_hours": ("service status",),
        },
        ("No broadband connection", "Broadband drops every evening"),
        1.0,
        0.45,
        ("switch", "call", "sms"),
    ),
    Topic(
        "slow",
        "support_en",
        0.14,
        {"main_menu": "1", "tech_menu": "2"},
        {
            "main_menu": ("technical", "my wifi", "broadband"),
            "tech_menu": ("slow speeds", "wifi keeps dropping"),
        },
        ("Slow speeds and wifi drop-outs",),
        1.0,
        0.6,
        ("email", "call"),
    ),
    Topic(
        "tv",
        "support_en",
        0.07,
        {"main_menu": "1", "tech_menu": "3"},
        {"main_menu": ("technical support",), "tech_menu": ("TV", "my set top box", "the landline")},
        ("TV box stuck on start-up", "No dial tone on the home phone"),
        1.0,
        0.6,
        ("email", "whatsapp"),
    ),
    Topic(
        "billing",
        "support_en",
        0.22,
        {"main_menu": "2", "callback_offer": "1"},
        {"main_menu": ("billing", "a question about my bill", "I want a refund")},
        ("Bill higher than expected", "Refund for a service outage", "Direct debit taken twice"),
        1.0,
        0.65,
        ("email", "sms"),
    ),
    Topic(
        "order",
        "support_en",
        0.13,
        {"main_menu": "3"},
        {"main_menu": ("track an order", "where is my router", "engineer visit")},
    ),
    Topic(
        "sales",
        "support_en",
        0.07,
        {"main_menu": "4"},
        {"main_menu": ("sales", "upgrade", "I'm moving home")},
    ),
    Topic(
        "agent",
        "support_en",
        0.15,
        {"main_menu": "0", "callback_offer": "1"},
        {"main_menu": ("speak to an agent", "agent", "a human please")},
        ("Change of address", "Account holder change"),
        0.4,
        0.8,
        ("email", "call"),
    ),
    Topic(
        "case",
        "support_en",
        0.0,
        {"case_menu": "1", "main_menu": "0"},
        {"case_menu": ("my case", "same problem"), "main_menu": ("agent",)},
    ),
)
TOPIC = {topic.key: topic for topic in TOPICS}
WRITTEN_FOLLOW_UP: dict[str, FollowUp] = {"email": "email", "whatsapp": "whatsapp", "sms": "sms"}
FOLLOW_UP_TOPIC = {"banco_es": "incidencia", "support_en": "case"}
# The queue an agent takes a topic's follow-up from (the flows route the calls themselves).
TOPIC_QUEUES: dict[str, tuple[str, ...]] = {
    "facturacion": ("facturacion",),
    "averia": ("averias",),
    "tarjeta": ("averias",),
    "agente": ("atencion_general",),
    "incidencia": ("incidencias",),
    "saldo": ("atencion_general",),
    "no_internet": ("technical",),
    "slow": ("technical",),
    "tv": ("technical",),
    "billing": ("billing",),
    "agent": ("support",),
    "case": ("technical",),
    "order": ("support",),
    "sales": ("support",),
}
YES = {"es": ("sí", "sí, eso es", "correcto"), "en": ("yes", "yes please", "that's right")}


# --- when people get in touch -------------------------------------------------------------------------


def _numbers(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split())


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Calls per hour of the local day, relative (weekdays, Saturdays, Sundays and holidays).
WEEKDAY_HOURS = _numbers("0 0 0 0 0 0 0.05 0.3 1.6 3.2 4.2 4.4 3.8 3 2.6 3 3.4 3 2.2 1.4 0.5 0.3 0.15 0.05")
SATURDAY_HOURS = _numbers("0 0 0 0 0 0 0 0.1 0.4 1.5 2.5 2.8 2.4 1.8 1 0.7 0.6 0.4 0.3 0.2 0.2 0.1 0.05 0")
SUNDAY_HOURS = _numbers("0 0 0 0 0 0 0 0 0.1 0.3 0.6 0.7 0.6 0.5 0.4 0.4 0.5 0.5 0.5 0.4 0.3 0.2 0.1 0")
DAY_VOLUME = (1.3, 1.1, 1.0, 1.0, 0.95, 0.5, 0.2)  # Monday first
CALLS_PER_CUSTOMER_DAY = 0.032  # inbound calls a weekday, per customer
WRITTEN_PER_CUSTOMER_DAY = 0.0055  # problems first raised in writing (email, WhatsApp, a web form)


# --- people --------------------------------------------------------------------------------------------

ES_FIRST_NAMES = _words(
    "Lucía María Carmen Ana Laura Marta Paula Sara Elena Isabel Cristina Alba Nuria Rocío Pilar "
    "Antonio José Manuel Francisco David Juan Javier Daniel Carlos Alejandro Miguel Rafael Pedro "
    "Sergio Jorge Álvaro Iván Raúl Rubén Adrián Hugo"
)
ES_SURNAMES = _words(
    "García Rodríguez González Fernández López Martínez Sánchez Pérez Gómez Martín Jiménez Ruiz "
    "Hernández Díaz Moreno Muñoz Álvarez Romero Alonso Gutiérrez Navarro Torres Domínguez Vázquez "
    "Ramos Gil Ramírez Serrano Blanco Molina Morales Suárez Ortega Delgado Castro Ortiz Rubio Marín "
    "Sanz Iglesias"
)
GB_FIRST_NAMES = _words(
    "Olivia Amelia Isla Ava Mia Ivy Lily Isabella Sophia Grace Freya Emily Poppy Evie Charlotte "
    "Oliver George Harry Noah Jack Leo Arthur Muhammad Oscar Charlie Henry Thomas Jacob Alfie James "
    "William Samuel Joshua Daniel Priya Aisha"
)
GB_SURNAMES = _words(
    "Smith Jones Taylor Brown Williams Wilson Johnson Davies Robinson Wright Thompson Evans Walker "
    "White Roberts Green Hall Wood Jackson Clarke Patel Khan Lewis Harris Martin Cooper King Baker "
    "Morgan Hughes Edwards Turner Hill Moore Ward Ali Campbell Murphy Kelly Shaw"
)
ES_MAIL_DOMAINS = ("gmail.com", "hotmail.com", "yahoo.es", "outlook.es", "telefonica.net")
GB_MAIL_DOMAINS = ("gmail.com", "outlook.com", "btinternet.com", "yahoo.co.uk", "hotmail.co.uk", "sky.com")


# --- what is written ------------------------------------------------------------------------------------

# Message templates by language and kind; `{first}`, `{name}`, `{agent}`, `{company}`, `{subject}` filled in.
MESSAGE_TEXTS: dict[str, dict[str, tuple[str, ...]]] = {
    "es": {
        "sms_out": (
            "{company}: hola {first}, estamos revisando su incidencia «{subject}». Le avisaremos en cuanto "
            "haya novedades; puede responder a este mensaje.",
        ),
        "sms_in": (
            "Gracias, quedo a la espera.",
            "Vale, ¿cuánto tardará?",
            "De acuerdo. ¿Necesitan algo más de mí?",
            "Ok, gracias",
        ),
        "whatsapp_out": (
            "Hola {first}, soy {agent} de {company}. Ya lo estamos mirando: «{subject}». En cuanto lo "
            "tengamos le escribo por aquí.",
            "Hola {first}, ya está solucionado. ¿Puede comprobarlo?",
        ),
        "whatsapp_in": (
            "Hola, les escribo por lo de «{subject}». ¿Hay novedades?",
            "Buenos días, sigo con el problema: {subject}",
            "Perfecto, ya funciona. Gracias",
        ),
        "email_out": (
            "Estimado/a {name}:\n\nHemos recibido su consulta sobre «{subject}». Para continuar, "
            "necesitamos que nos envíe una copia del último extracto.\n\nUn saludo,\n{agent}\n{company}",
        ),
        "email_in": (
            "Buenos días:\n\nAdjunto el justificante que me pidieron.\n\nUn saludo,\n{first}",
            "Hola, ¿han podido revisar lo que les envié? Gracias.\n{first}",
        ),
        "email_resolved": (
            "Estimado/a {name}:\n\nLe confirmamos que hemos resuelto su incidencia «{subject}». "
            "Gracias por su paciencia.\n\n{agent}\n{company}",
        ),
        "web_in": ("Formulario de contacto: {subject}. Por favor, llámenme o escríbanme.",),
        "email_new": (
            "Buenos días:\n\nLes escribo por lo siguiente: {subject}. ¿Pueden ayudarme?\n\nGracias,\n{first}",
        ),
        "sms_new": ("Hola, tengo un problema: {subject}. ¿Me pueden ayudar?",),
        "whatsapp_new": ("Hola, buenas. Les escribo por esto: {subject}. ¿Me pueden ayudar?",),
    },
    "en": {
        "sms_out": (
            "{company}: hi {first}, we're looking into \"{subject}\". We'll text you as soon as we know "
            "more; you can reply to this message.",
        ),
        "sms_in": (
            "Thanks, I'll wait to hear from you.",
            "OK, how long will it take?",
            "Cheers",
            "Still not fixed.",
        ),
        "whatsapp_out": (
            "Hi {first}, {agent} from {company} here. We're on it: \"{subject}\". I'll message you here.",
            "Hi {first}, that should be sorted now. Could you check?",
        ),
        "whatsapp_in": (
            'Hi, any news about "{subject}"?',
            "Morning, still having the problem: {subject}",
            "All working now, thanks!",
        ),
        "email_out": (
            'Dear {name},\n\nThank you for contacting us about "{subject}". Could you send us a photo of '
            "your router lights so we can check the line?\n\nKind regards,\n{agent}\n{company}",
        ),
        "email_in": (
            "Hello,\n\nPlease find the photo attached.\n\nThanks,\n{first}",
            "Hi, did you get my last email? Thanks, {first}",
        ),
        "email_resolved": (
            'Dear {name},\n\nWe\'re glad to confirm that "{subject}" is resolved. Thank you for your '
            "patience.\n\n{agent}\n{company}",
        ),
        "web_in": ("Contact form: {subject}. Please get back to me.",),
        "email_new": ("Hello,\n\nI'm writing about this: {subject}. Can you help?\n\nThanks,\n{first}",),
        "sms_new": ("Hi, I've got a problem: {subject}. Can you help?",),
        "whatsapp_new": ("Hi there, I need help with this: {subject}",),
    },
}
RESOLUTIONS = {
    "es": ("Resuelto en la llamada", "Abonado el importe", "Incidencia corregida", "Información facilitada"),
    "en": ("Resolved on the call", "Refund issued", "Fault fixed", "Information given"),
}
