"""What each page offers to interact with, and the words users leave in its forms.

Synthesis picks elements and texts from here. Free-text values (search queries, feedback) come in
positive, neutral and negative wording so sentiment analysis has something real to read; synthesis
chooses the mood from how the visit went (converted, dropped off here, or somewhere in between).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

INTERACTION_TYPES = ("click", "scroll", "hover", "form")
MOODS = ("positive", "neutral", "negative")
DESKTOP_WIDTH = 1440  # element positions are laid out for this width; narrower devices scale x


@dataclass(frozen=True)
class Element:
    name: str
    kind: str  # one of INTERACTION_TYPES
    x: int
    y: int
    values: tuple[str, ...] = ()  # fixed choices for form elements without free text
    # A form element whose value the user types (a search box, a feedback text), as opposed to one
    # picked from fixed choices (a select, a rating, a promo code, a newsletter toggle): only typed
    # text carries sentiment. Interactions store it as ``free_text``.
    free_text: bool = False


_PAGES: dict[str, tuple[Element, ...]] = {
    "home": (
        Element("nav_search_bar", "click", 720, 40),
        Element("hero_banner_cta", "click", 720, 420),
        Element("category_tile_electronics", "click", 300, 900),
        Element("category_tile_fashion", "click", 720, 900),
        Element("promo_carousel_next", "click", 1300, 420),
        Element("cart_icon", "click", 1380, 40),
        Element("nav_menu_deals", "hover", 500, 40),
        Element("category_tile_home", "hover", 1140, 900),
        Element("featured_product_card", "hover", 400, 1400),
        Element("home_page_body", "scroll", 720, 1200),
        Element("newsletter_signup", "form", 720, 2200, ("subscribed", "dismissed")),
    ),
    "search": (
        Element("search_button", "click", 1000, 120),
        Element("result_card", "click", 480, 520),
        Element("filter_price", "click", 150, 400),
        Element("sort_dropdown", "click", 1250, 200),
        Element("add_to_cart_button", "click", 900, 560),
        Element("pagination_next", "click", 720, 2300),
        Element("result_card_image", "hover", 300, 520),
        Element("filter_brand", "hover", 150, 600),
        Element("results_list", "scroll", 720, 1300),
        Element("search_input", "form", 640, 120, free_text=True),
        Element("filter_size_select", "form", 150, 800, ("S", "M", "L", "XL")),
    ),
    "payment": (
        Element("pay_now_button", "click", 1100, 1500),
        Element("payment_method_card", "click", 400, 500),
        Element("payment_method_paypal", "click", 400, 580),
        Element("apply_promo_button", "click", 1200, 1100),
        Element("back_to_cart_link", "click", 150, 200),
        Element("order_total", "hover", 1100, 400),
        Element("security_badge", "hover", 1100, 1650),
        Element("checkout_form", "scroll", 720, 900),
        Element("card_type_select", "form", 500, 700, ("visa", "mastercard", "amex")),
        Element("promo_code_input", "form", 1000, 1100, ("SPRING15", "WELCOME10", "FREESHIP")),
        Element("shipping_option_select", "form", 500, 1250, ("standard", "express", "pickup")),
    ),
    "confirmation": (
        Element("continue_shopping_button", "click", 720, 900),
        Element("view_order_button", "click", 720, 800),
        Element("share_order_button", "click", 1200, 300),
        Element("order_summary", "hover", 720, 500),
        Element("delivery_estimate", "hover", 720, 650),
        Element("confirmation_page_body", "scroll", 720, 800),
        Element("rating_stars", "form", 720, 1100),
    ),
}

SEARCH_TEXTS: dict[str, tuple[str, ...]] = {
    "positive": (
        "best rated wireless headphones",
        "great gift ideas for her",
        "lovely summer dresses",
        "top quality running shoes",
        "awesome budget laptop deals",
        "beautiful handmade mugs",
        "amazing kids toys on sale",
    ),
    "neutral": (
        "usb c cable 2m",
        "blue jeans size 32",
        "coffee maker",
        "phone case",
        "desk lamp led",
        "winter jacket men",
    ),
    "negative": (
        "refund for damaged order",
        "broken phone charger replacement",
        "complaint about late delivery",
        "faulty laptop battery problem",
        "return wrong size shoes",
        "replacement for my broken headphones",
    ),
}

FEEDBACK_TEXTS: dict[str, dict[str, tuple[str, ...]]] = {
    "home": {
        "positive": (
            "Love the new homepage, really easy to find deals!",
            "Great offers today, the banner caught my eye",
            "Clean and friendly design, nice work",
        ),
        "neutral": ("Just browsing for now", "Looking around before deciding"),
        "negative": (
            "The homepage is cluttered and ugly, a bad first impression",
            "Too many pop-ups, really annoying",
            "Confusing menu, I could not find anything",
        ),
    },
    "search": {
        "positive": (
            "Excellent search results, found exactly what I wanted",
            "Filters are great and super helpful",
            "Fast and accurate search, thank you!",
        ),
        "neutral": ("Search works, I am comparing a few items", "Checking prices for later"),
        "negative": (
            "Terrible search results, nothing relevant",
            "Search is slow and the filters are broken",
            "Frustrating, the items I wanted are always out of stock",
        ),
    },
    "payment": {
        "positive": (
            "Smooth checkout, really quick and easy",
            "Love that PayPal works here, great experience",
            "Secure and simple payment, very happy",
        ),
        "neutral": ("Entered my card details", "Reviewing the order total"),
        "negative": (
            "Payment was declined twice, awful experience",
            "Hidden shipping fees at checkout, very disappointed",
            "Checkout kept failing, really frustrating",
            "Too expensive after taxes, really disappointing",
        ),
    },
    "confirmation": {
        "positive": (
            "Order placed, excellent service, thank you!",
            "Great shopping experience, will definitely come back",
            "Fantastic, quick and painless purchase",
        ),
        "neutral": ("Order received", "Waiting for the delivery email"),
        "negative": (
            "Order went through but the delivery date is terrible",
            "Confirmation page looked broken, worried my order failed",
        ),
    },
}

_GENERIC_FEEDBACK: dict[str, tuple[str, ...]] = {
    "positive": ("Great {page} page, really helpful", "Love the {page} page, easy to use"),
    "neutral": ("Viewed the {page} page", "Nothing to add about the {page} page"),
    "negative": ("The {page} page is confusing and slow", "Bad experience on the {page} page, frustrating"),
}

RATING_BY_MOOD = {"positive": ("4", "5"), "neutral": ("3",), "negative": ("1", "2")}


def elements_for(page: str) -> tuple[Element, ...]:
    """The page's elements, its free-text feedback form last; pages outside the catalogue get generic ones."""
    elements = _PAGES.get(page) or (
        Element(f"{page}_main_button", "click", 720, 600),
        Element(f"{page}_nav_link", "click", 200, 40),
        Element(f"{page}_content_card", "hover", 720, 800),
        Element(f"{page}_page_body", "scroll", 720, 1200),
    )
    return (*elements, Element(f"{page}_feedback", "form", 720, 1800, free_text=True))


def feedback_texts(page: str, mood: str) -> tuple[str, ...]:
    texts = FEEDBACK_TEXTS.get(page)
    if texts is not None:
        return texts[mood]
    return tuple(t.format(page=page.replace("_", " ")) for t in _GENERIC_FEEDBACK[mood])


def form_values(page: str, element: Element, mood: str) -> tuple[str, ...]:
    """What a user may type or pick in a form element, in the given mood (empty: no value)."""
    if element.kind != "form":
        return ()
    if element.name == f"{page}_feedback":
        return feedback_texts(page, mood)
    if element.name == "search_input":
        return SEARCH_TEXTS[mood]
    if element.name == "rating_stars":
        return RATING_BY_MOOD[mood]
    return element.values


@dataclass(frozen=True)
class CompiledCatalogue:
    """The catalogue of a list of pages as flat arrays, for vectorised picks.

    Elements of all pages are numbered 0..E-1. Per (page index, interaction type index) the options a
    random pick chooses from are ``element_of[option_start : option_start + option_count]`` (every page
    element except the feedback form, which synthesis places on purpose). Per (element, mood) the form
    values are ``values[value_start : value_start + value_count]``.
    """

    names: list[str]
    kinds: np.ndarray  # element -> index into INTERACTION_TYPES
    free_text: np.ndarray  # element -> bool, Element.free_text
    x: np.ndarray
    y: np.ndarray
    option_start: np.ndarray  # (pages, types)
    option_count: np.ndarray
    element_of: np.ndarray  # option slot -> element
    feedback: np.ndarray  # page -> its feedback form element
    opener: np.ndarray  # page -> element every visit starts with (the search box), -1 for none
    value_start: np.ndarray  # (elements, moods)
    value_count: np.ndarray
    values: np.ndarray  # object array of str


@cache
def compile_catalogue(pages: tuple[str, ...]) -> CompiledCatalogue:
    names: list[str] = []
    kinds: list[int] = []
    free_text: list[bool] = []
    xs: list[int] = []
    ys: list[int] = []
    option_start = np.zeros((len(pages), len(INTERACTION_TYPES)), dtype=np.int64)
    option_count = np.zeros_like(option_start)
    element_of: list[int] = []
    feedback = np.zeros(len(pages), dtype=np.int64)
    opener = np.full(len(pages), -1, dtype=np.int64)
    value_start: list[list[int]] = []
    value_count: list[list[int]] = []
    values: list[str] = []
    for p, page in enumerate(pages):
        elements = elements_for(page)
        first = len(names)
        for element in elements:
            if element.name == "search_input":
                opener[p] = len(names)
            starts, counts = [], []
            for mood in MOODS:
                texts = form_values(page, element, mood)
                starts.append(len(values))
                counts.append(len(texts))
                values.extend(texts)
            value_start.append(starts)
            value_count.append(counts)
            names.append(element.name)
            kinds.append(INTERACTION_TYPES.index(element.kind))
            free_text.append(element.free_text)
            xs.append(element.x)
            ys.append(element.y)
        feedback[p] = len(names) - 1
        pickable = list(range(first, len(names) - 1))
        for t in range(len(INTERACTION_TYPES)):
            options = [e for e in pickable if kinds[e] == t] or [feedback[p]]  # never an empty choice
            option_start[p, t] = len(element_of)
            option_count[p, t] = len(options)
            element_of.extend(int(e) for e in options)
    return CompiledCatalogue(
        names=names,
        kinds=np.array(kinds, dtype=np.int64),
        free_text=np.array(free_text, dtype=bool),
        x=np.array(xs, dtype=np.int64),
        y=np.array(ys, dtype=np.int64),
        option_start=option_start,
        option_count=option_count,
        element_of=np.array(element_of, dtype=np.int64),
        feedback=feedback,
        opener=opener,
        value_start=np.array(value_start, dtype=np.int64),
        value_count=np.array(value_count, dtype=np.int64),
        values=np.array(values, dtype=object),
    )
