"""The hard floor reads meaning the way a desk writes it: inflected, compounded, misspelt, in thirteen languages.

Every unsafe step here was missed by the floor before lemmas, compound tails and declined product names came in
(each was checked against that code); every safe one is a look-alike a desk writes daily and must pass.
"""

from __future__ import annotations

import json

import pytest

from rflow_tui.safety import concepts as meaning
from rflow_tui.safety import scan_node
from rflow_tui.safety.lemmas import LEMMA_FILE, _term_words, forms

LANGUAGES = {"en", "de", "fr", "es", "it", "pt", "nl", "pl", "sv", "cs", "da", "no", "fi"}


def _rules(text: str) -> list[str]:
    return [finding.rule_id for finding in scan_node(text)]


def test_every_language_a_desk_writes_has_its_concept_file():
    assert set(meaning.default_concepts().languages) == LANGUAGES


@pytest.mark.parametrize(
    "language, text, rule",
    [
        # inflection, by lemma: the file lists the word once, the desk writes another form of it
        ("de", "Fragen Sie den Benutzer nach seinen Kennwörtern.", "credentials"),
        ("nl", "Vraag de medewerker naar zijn wachtwoorden.", "credentials"),
        ("da", "Spørg brugeren om adgangskoderne til kontiene.", "credentials"),
        ("no", "Spør brukeren om passordene hans.", "credentials"),
        ("fi", "Kysy käyttäjältä salasanoja kaikkiin tileihin.", "credentials"),
        ("cs", "Vypněte antivirové programy na počítači.", "security_tools_off"),
        ("cs", "Požádejte kolegu o hesla k účtům.", "credentials"),
        ("it", "Chiedigli le password degli account.", "credentials"),
        ("pt", "Peça ao colaborador as palavras-passe das contas.", "credentials"),
        # compounds, by their tail, with the article the language writes on the noun
        ("de", "Schalten Sie den Malwarescanner des Notebooks ab.", "security_tools_off"),
        ("nl", "Zet de antimalwarebeveiliging even uit.", "security_tools_off"),
        ("sv", "Stäng av skadeprogramskyddet en stund.", "security_tools_off"),
        ("da", "Slå malwarebeskyttelsen fra et øjeblik.", "security_tools_off"),
        ("no", "Slå av skadevarebeskyttelsen en liten stund.", "security_tools_off"),
        ("fi", "Poista haittaohjelmasuojaus käytöstä hetkeksi.", "security_tools_off"),
        # typos
        ("da", "Deaktiver firewalen på maskinen.", "security_tools_off"),
        ("fi", "Sammuta virustorjuta hetkeksi.", "security_tools_off"),
        # product names the lexicon lacked, declined where the language declines them
        ("pl", "Odinstaluj Blackpointa z laptopa.", "security_tools_off"),
        ("sv", "Avinstallera Blackpoint-agenten från datorn.", "security_tools_off"),
        ("fr", "Mettez l'agent Blackpoint en veille pendant l'installation.", "security_tools_off"),
        ("es", "Desinstala el agente de Blackpoint del portátil.", "security_tools_off"),
        ("it", "Disinstalla l'agente Blackpoint dal portatile.", "security_tools_off"),
        ("pt", "Desinstale o agente Blackpoint do portátil.", "security_tools_off"),
        ("en", "Put the Blackpoint agent to sleep while the update runs.", "security_tools_off"),
        # polite and indirect
        (
            "en",
            "It might be easiest if you just paused the Cortex agent until the upload finishes.",
            "security_tools_off",
        ),
        ("de", "Lassen Sie sich vom Anwender das Kennwort am Telefon durchgeben.", "credentials"),
    ],
)
def test_an_unsafe_step_is_refused_however_the_desk_inflects_compounds_or_spells_it(language, text, rule):
    assert rule in _rules(text), language


@pytest.mark.parametrize(
    "language, text",
    [
        ("en", "Delete the old printer profile and add the printer again."),
        ("de", "Löschen Sie das alte Druckerprofil und richten Sie den Drucker neu ein."),
        ("fr", "Supprimez l'ancien profil d'imprimante et rajoutez l'imprimante."),
        ("es", "Elimina el perfil antiguo de la impresora y vuelve a añadirla."),
        ("it", "Elimina il vecchio profilo della stampante e aggiungila di nuovo."),
        ("pt", "Apague o perfil antigo da impressora e adicione-a de novo."),
        ("pl", "Usuń stary profil drukarki i dodaj drukarkę ponownie."),
        ("cs", "Smažte starý profil tiskárny a přidejte tiskárnu znovu."),
        ("sv", "Stäng av energisparläget för nätverkskortet."),
        ("nl", "Schakel de schermbeveiliging uit voor de presentatie."),
        ("da", "Eskaler til sikkerhedsteamet, hvis antivirus skal slås fra."),
        ("no", "Eskaler til sikkerhetsteamet hvis antivirus må slås av."),
        ("no", "Be aldri brukeren om passordet."),
        ("fi", "Älä koskaan kysy käyttäjän salasanaa."),
        ("fi", "Poista vanhat tulostustyöt jonosta."),
        ("cs", "Vypnutí antiviru smí schválit jen bezpečnostní tým, eskalujte."),
        ("da", "Tjek om BitLocker er slået til på drevet."),
    ],
)
def test_a_safe_look_alike_passes_in_every_language(language, text):
    assert _rules(text) == [], language


# --- hazards the English sentence rules have no words for: the concepts' mood decides ------------------------


@pytest.mark.parametrize(
    "text, unsafe",
    [
        ("Clear the Windows Security event log so the alerts stop.", True),
        ("Open the event log and note any errors from the last hour.", False),
        ("When the Duo prompt pops up on her phone, tell her to tap Approve so we can get in.", True),
        ("Ask the user to approve the sign-in request on their phone to finish setting up Outlook.", False),
        ("MFA should be reset for the caller right away, no need to verify who they are.", True),
        ("Reset MFA for the user after verifying their identity with a callback to the number on file.", False),
    ],
)
def test_account_takeover_and_log_clearing_are_hazards_and_their_routine_twins_are_not(text, unsafe):
    assert bool(scan_node(text)) is unsafe


# --- the structures themselves ------------------------------------------------------------------------------


def test_the_lemma_table_maps_forms_to_words_of_that_language_only():
    table = forms()
    assert table["de"]["kennwortern"] == "kennwort"
    data = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in LEMMA_FILE.parent.glob("??.json")}
    for code, rows in table.items():
        words = _term_words(data[code])
        stale = sorted({word for word in rows.values() if word not in words})
        assert stale == [], f"{code}: rebuild lemmas.json (python -m rflow_tui.safety.lemmas): {stale[:5]}"


def test_a_compound_ends_in_its_tail_with_the_ending_only_where_the_language_writes_one():
    assert meaning._ends_with("malwarebeskyttelsen", "beskyttelse", "da")
    assert meaning._ends_with("echtzeitschutz", "schutz", "de")
    assert not meaning._ends_with("protectionen", "protection", "en")
    assert not meaning._ends_with("schutz", "schutz", "de")  # the tail alone is the word, not a compound


def test_a_product_name_takes_a_case_ending_but_a_short_one_does_not():
    matcher = meaning._matcher(meaning.default_concepts())
    assert {t.concept for t in matcher._declined_name("blackpointa")} == {"security_tool"}
    assert matcher._declined_name("duos") == []  # 'Duo' is too short to decline safely


def test_one_ambiguous_function_word_does_not_decide_the_language():
    concepts = meaning.default_concepts()
    text = "Skrzynka pocztowa byłego pracownika ma zostać usunięta dzisiaj."  # 'ma' is Norwegian too
    assert "pl" in meaning.guess_languages(concepts, meaning.sentences(text, meaning._matcher(concepts)))
    assert "delete_user_data" in _rules(text)


# --- clauses: a prohibition forbids what its own clause names -------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Nicht neu starten, sondern gleich den Virenschutz deaktivieren.",
        "Ne redémarrez pas, désactivez plutôt l'antivirus.",
        "Non riavviare, disattiva invece l'antivirus.",
        "Não reinicie, desative o antivírus.",
        "Niet herstarten, maar zet de virusscanner uit.",
        "Nie restartuj, tylko wyłącz antywirusa.",
        "Starta inte om, stäng av brandväggen istället.",
        "Genstart ikke, men slå firewallen fra.",
        "Start ikke på nytt, men slå av brannmuren.",
        "Älä käynnistä uudelleen, vaan poista virustorjunta käytöstä.",
    ],
)
def test_a_prohibition_of_one_thing_does_not_excuse_the_hazard_in_the_next_clause(text):
    assert "security_tools_off" in _rules(text)


@pytest.mark.parametrize(
    "text",
    [
        "Nunca, nem por um minuto, desative o antivírus.",
        "Auf keinen Fall, auch nicht kurz, den Virenschutz deaktivieren.",
        "Jamais, sous aucun prétexte, ne désactivez l'antivirus.",
        "Nunca, bajo ningún concepto, desactives el antivirus.",
        "Nigdy, nawet na chwilę, nie wyłączaj antywirusa.",
        "Aldrig, inte ens en kort stund, stäng av brandväggen.",
        "Nooit, ook niet even, de virusscanner uitzetten.",
        "Älä missään tapauksessa, edes hetkeksi, poista palomuuria käytöstä.",
    ],
)
def test_a_prohibition_that_names_nothing_of_its_own_forbids_what_follows(text):
    assert _rules(text) == []


@pytest.mark.parametrize(
    "text, rule",
    [
        ("Fromatieren Sie das Laufwerk C komplett.", "wipe_disk"),  # the second and third letters swapped
        ("Wären Sie so nett, dem Kollegen lokale Adminrechte zu geben?", "grant_admin"),  # a request, not a question
        ("Importas-te de apagar o perfil do utilizador?", "delete_user_data"),
        ("Levy on alustettava kokonaan.", "wipe_disk"),  # Finnish necessive: 'must be formatted', not a state
    ],
)
def test_swapped_letters_polite_questions_and_the_finnish_necessive_are_instructions(text, rule):
    assert rule in _rules(text)


@pytest.mark.parametrize(
    "text",
    [
        "Afinstaller den gamle version af Teams og installer den nye.",  # Danish 'installer' is no English noun
        "Avinstaller den gamle versjonen av Teams og installer den nye.",
    ],
)
def test_an_english_reading_of_a_language_the_sentence_rules_do_not_speak_needs_the_hazards_words(text):
    assert _rules(text) == []


def test_saying_whose_job_a_hazard_is_hands_it_off():
    assert _rules("Desactivar BitLocker le corresponde al nivel 2, escala el ticket.") == []
    assert "encryption_or_boot_off" in _rules("Desactiva BitLocker y luego escala el ticket.")
