"""Everything the bot says, in one catalogue: Italian first, English for users whose Telegram is in English.

Messages are Telegram HTML. `t()` escapes every parameter, so text typed by a customer can be echoed back
without breaking the formatting. Register: formal "Lei", short sentences, one question per message.
"""

from __future__ import annotations

import html
from string import Formatter

LANGUAGES = ("it", "en")
DEFAULT_LANGUAGE = "it"

IT: dict[str, str] = {
    # --- general -------------------------------------------------------------------------------------
    "welcome": (
        "Benvenuto nell'assistente di <b>Unogas</b>.\n"
        "Qui può registrarsi all'area clienti, accedere e recuperare la password.\n\n"
        "/registrati – crea il profilo (tenga a portata di mano una bolletta)\n"
        "/accedi – entra con e-mail e password\n"
        "/recupera_password – se ha dimenticato la password\n"
        "/profilo – i dati del suo profilo, dopo l'accesso\n"
        "/esci – chiude l'accesso\n"
        "/aiuto – come funziona"
    ),
    "help": (
        "Le faccio una domanda alla volta: risponda con un messaggio.\n"
        "Per la registrazione servono i dati della bolletta: codice cliente, nome e cognome "
        "(o ragione sociale) e codice fiscale o partita IVA.\n\n"
        "/registrati – crea il profilo\n"
        "/accedi – entra nell'area clienti\n"
        "/profilo – vede i dati del profilo\n"
        "/esci – esce dall'area clienti\n"
        "/recupera_password – imposta una nuova password\n"
        "/indietro – torna alla domanda precedente\n"
        "/annulla – interrompe l'operazione in corso\n"
        "/lingua – cambia lingua"
    ),
    "progress": "<i>Passo {step} di {total}</i>",
    "help_prefix": "ℹ️ {help}",
    "cancelled": "Operazione annullata: i dati inseriti finora sono stati cancellati.",
    "nothing_to_cancel": "Non c'è nessuna operazione in corso. Scriva /aiuto per vedere cosa posso fare.",
    "expired": (
        "Per sicurezza i dati inseriti sono stati cancellati dopo {minutes} minuti di inattività. "
        "Può ricominciare quando vuole."
    ),
    "busy_other_flow": "Prima concluda l'operazione in corso, oppure la interrompa con /annulla.",
    "text_only": "Posso leggere solo messaggi di testo.",
    "unknown_command": "Non conosco questo comando. Scriva /aiuto per l'elenco dei comandi.",
    "already_first": "Questa è la prima domanda.",
    "too_many_invalid": (
        "Sembra che questa domanda dia qualche difficoltà. Può riprovare, ricominciare da capo "
        "oppure annullare."
    ),
    "stale_button": "Questo pulsante non è più attivo.",
    "error_generic": "Si è verificato un problema. Ripeta per favore l'ultima risposta.",
    "db_unavailable": "Il servizio è momentaneamente non disponibile. Riprovi tra qualche minuto.",
    "slow_down": (
        "Ho ricevuto troppi messaggi di seguito e alcuni degli ultimi non sono stati letti. "
        "Attenda la mia risposta prima di scrivere ancora, poi ripeta ciò che manca."
    ),
    "hash_wait": (
        "Troppi tentativi in poco tempo: per sicurezza questo messaggio non è stato elaborato. "
        "Attenda {seconds} s, poi lo invii di nuovo. Le risposte date finora sono conservate."
    ),
    "group_redirect": (
        "Per proteggere i suoi dati, la registrazione e l'accesso si fanno solo in chat privata con me."
    ),
    "language_set": "Da ora le scrivo in italiano. Se stava rispondendo a una domanda, continui pure.",
    "language_choose": "In che lingua preferisce che le scriva?",
    # --- buttons -------------------------------------------------------------------------------------
    "btn_person": "Persona",
    "btn_business": "Azienda",
    "btn_skip": "Salta",
    "btn_save": "Salva",
    "btn_cancel": "Annulla",
    "btn_restart": "Ricomincia",
    "btn_continue": "Continua",
    "btn_share_phone": "Condividi il mio numero",
    "btn_open_private": "Continua in privato",
    "btn_edit": "Modifica: {label}",
    # --- registration: questions ----------------------------------------------------------------------
    "reg_intro": (
        "Iniziamo la registrazione all'area clienti. Tenga a portata di mano una bolletta: "
        "le chiederò i dati stampati sopra. Può interrompere in ogni momento con /annulla."
    ),
    "q_customer_code": (
        "Qual è il suo <b>codice cliente</b>?\n"
        "Lo trova sulla prima pagina della bolletta, alla voce «NIC/CE/COD.CLIENTE» "
        "(per esempio UG-100234)."
    ),
    "q_kind": "Il contratto è intestato a una <b>persona</b> o a un'<b>azienda</b>?",
    "q_first_name": "Qual è il suo <b>nome</b>, come riportato nell'intestazione della bolletta?",
    "q_last_name": "E il suo <b>cognome</b>, come riportato nella bolletta?",
    "q_company_name": (
        "Qual è la <b>ragione sociale</b>, come riportata nell'intestazione della bolletta?\n"
        "Per esempio: Rossi Impianti S.r.l."
    ),
    "q_tax_code_person": (
        "Qual è il suo <b>codice fiscale</b>?\n"
        "È riportato nella bolletta, nei dati del cliente (16 caratteri, per esempio RSSMRA80A01H501U)."
    ),
    "q_tax_code_business": (
        "Qual è la <b>partita IVA</b> dell'azienda?\n"
        "È riportata nella bolletta, nei dati del cliente (11 cifre, per esempio 01234560017). "
        "Una ditta individuale può indicare il codice fiscale del titolare."
    ),
    "q_phone": (
        "Qual è un suo <b>numero di telefono</b>? È facoltativo: se preferisce non indicarlo, "
        "scriva «salta».\nPer esempio: 347 123 4567"
    ),
    "q_email": (
        "Ora scelga i dati di accesso. Quale <b>indirizzo e-mail</b> vuole usare come nome utente?\n"
        "Per esempio: mario.rossi@example.it"
    ),
    "q_password": (
        "Scelga una <b>password</b>: almeno 8 caratteri, meglio se una frase facile da ricordare "
        "e difficile da indovinare. Non usi i suoi dati personali.\n"
        "Per sicurezza cancellerò subito il suo messaggio."
    ),
    "q_password_repeat": "Scriva di nuovo la <b>password</b>, per conferma.",
    "q_question": (
        "Scriva una <b>domanda di sicurezza</b> a cui solo lei sa rispondere: servirà se dimentica "
        "la password.\nPer esempio: Come si chiamava il mio primo gatto?"
    ),
    "q_answer": "Qual è la <b>risposta</b> alla domanda? Cancellerò subito il suo messaggio.",
    "q_answer_repeat": "Scriva di nuovo la <b>risposta</b>, per conferma.",
    # --- registration: help for /aiuto mid-flow --------------------------------------------------------
    "h_customer_code": (
        "Il codice cliente identifica il suo contratto. È stampato sulla prima pagina della bolletta "
        "come NIC, CE o COD.CLIENTE: lettere, numeri e i segni - o /."
    ),
    "h_kind": "Scelga «Persona» se la bolletta è intestata a lei, «Azienda» se a una società o a un ente.",
    "h_first_name": "Scriva il nome esattamente come compare nella bolletta; se ne ha più di uno, li scriva tutti.",
    "h_last_name": "Scriva il cognome esattamente come compare nella bolletta.",
    "h_company_name": "Scriva la ragione sociale come compare nella bolletta, con la forma societaria (S.r.l., S.p.A.…).",
    "h_tax_code_person": "Il codice fiscale ha 16 caratteri tra lettere e numeri; lo trova anche sulla tessera sanitaria.",
    "h_tax_code_business": "La partita IVA ha 11 cifre ed è riportata nella bolletta sotto la ragione sociale.",
    "h_phone": "Il numero serve solo per contattarla se necessario. Può scrivere «salta» per non indicarlo.",
    "h_email": "L'indirizzo e-mail sarà il suo nome utente per accedere all'area clienti.",
    "h_password": "La password deve avere da 8 a 64 caratteri. Non usi password comuni né il suo nome.",
    "h_password_repeat": "Riscriva la stessa password di prima, per essere sicuri che non ci siano errori di battitura.",
    "h_question": "La domanda le verrà mostrata se dimentica la password. Scelga qualcosa che non cambia nel tempo.",
    "h_answer": "La risposta non distingue maiuscole, accenti e spazi. Non deve comparire nella domanda.",
    "h_answer_repeat": "Riscriva la stessa risposta di prima.",
    "h_summary": "Controlli i dati: «Salva» crea il profilo, «Annulla» cancella tutto.",
    # --- registration: outcomes ---------------------------------------------------------------------
    "verifying": "Grazie. Controllo i dati con quelli della bolletta…",
    "verified": "I dati corrispondono a quelli della bolletta.",
    "mismatch": (
        "I dati non corrispondono a quelli di un nostro cliente. Li controlli sulla bolletta e riprovi: "
        "ricominciamo dal codice cliente. Tentativi rimasti: {left}."
    ),
    "verify_locked": (
        "Troppi tentativi non riusciti. Per sicurezza non posso verificare altri dati per ora: "
        "riprovi tra un'ora oppure contatti il servizio clienti Unogas."
    ),
    "already_registered": (
        "Questo cliente ha già un profilo nell'area clienti. Può accedere con /accedi oppure, "
        "se non ricorda la password, usare /recupera_password."
    ),
    "email_taken": "Questo indirizzo e-mail è già usato da un altro profilo. Ne indichi un altro.",
    "email_taken_too_often": (
        "Per sicurezza non posso controllare altri indirizzi e-mail per ora: troppi erano già usati da altri "
        "profili. Riprovi tra un'ora con /registrati oppure contatti il servizio clienti Unogas."
    ),
    "password_mismatch": "Le due password non coincidono. Scelga di nuovo la password.",
    "answer_mismatch": "Le due risposte non coincidono. Scriva di nuovo la risposta.",
    "secret_expired": "Per sicurezza devo chiederle di nuovo questo dato.",
    "summary": (
        "Ecco il riepilogo dei suoi dati:\n\n{lines}\n\n"
        "Password e risposta di sicurezza non vengono mostrate. Prema «Salva» per creare il profilo."
    ),
    "summary_line": "{label}: <b>{value}</b>",
    "phone_none": "non indicato",
    "kind_person": "persona",
    "kind_business": "azienda",
    "label_customer_code": "Codice cliente",
    "label_kind": "Intestatario",
    "label_first_name": "Nome",
    "label_last_name": "Cognome",
    "label_company_name": "Ragione sociale",
    "label_tax_code": "Codice fiscale / P. IVA",
    "label_phone": "Telefono",
    "label_email": "E-mail",
    "label_password": "Password",
    "label_question": "Domanda di sicurezza",
    "label_answer": "Risposta",
    "saved": (
        "Le informazioni relative al proprio profilo sono state correttamente salvate.\n\n"
        "Ora può accedere all'area clienti con /accedi, usando l'e-mail {email} e la password scelta."
    ),
    "save_conflict_customer": "Nel frattempo è stato creato un profilo per questo cliente. "
    "Può accedere con /accedi.",
    "customer_gone": "Il codice cliente non risulta più tra i nostri clienti, quindi non posso creare il profilo. Contatti il servizio clienti Unogas.",
    "save_conflict_email": "Nel frattempo questo indirizzo e-mail è stato usato da un altro profilo. Ne scelga un altro.",
    "press_save": "Prema «Salva» per creare il profilo oppure «Annulla». Può anche modificare un dato.",
    "edit_which": "Quale dato vuole modificare?",
    # --- command menu -------------------------------------------------------------------------------
    "console_banner": (
        "Modalità terminale di unogas-bot: scriva come in chat, un messaggio per riga. "
        "I pulsanti sono numerati: scriva il numero o l'etichetta. /contatto NUMERO condivide un telefono; "
        "/quit esce."
    ),
    "console_deleted": "(il suo messaggio è stato cancellato per sicurezza)",
    "cmd_register": "Registrarsi all'area clienti",
    "cmd_login": "Accedere con e-mail e password",
    "cmd_recover": "Recuperare la password",
    "cmd_profile": "I dati del proprio profilo",
    "cmd_logout": "Uscire dall'area clienti",
    "cmd_cancel": "Annullare l'operazione in corso",
    "cmd_help": "Come funziona",
    "cmd_language": "Cambiare lingua",
    # --- input field hints ----------------------------------------------------------------------------
    "ph_customer_code": "es. UG-100234",
    "ph_first_name": "es. Mario",
    "ph_last_name": "es. Rossi",
    "ph_company_name": "es. Rossi Impianti S.r.l.",
    "ph_tax_code": "es. RSSMRA80A01H501U",
    "ph_phone": "es. 347 123 4567",
    "ph_email": "es. mario.rossi@example.it",
    "ph_question": "es. Il nome del mio primo gatto?",
    "ph_secret": "verrà cancellato subito",
    "ph_repeat": "di nuovo, per conferma",
    # --- answers that break a rule (validation.REASONS) ----------------------------------------------
    "e_customer_code.empty": (
        "Non ho ricevuto il codice cliente. Lo scriva così come è stampato, per esempio UG-100234."
    ),
    "e_customer_code.bad_chars": (
        "Il codice cliente contiene caratteri non ammessi ({chars}): usi solo lettere, numeri, - e "
        "/. Per esempio UG-100234."
    ),
    "e_customer_code.too_short": (
        "Il codice cliente è troppo corto: ha almeno {min} caratteri. Per esempio UG-100234."
    ),
    "e_customer_code.too_long": (
        "Il codice cliente è troppo lungo: al massimo {max} caratteri. Per esempio UG-100234."
    ),
    "e_customer_code.no_digit": (
        "Il codice cliente contiene sempre dei numeri. Lo copi dalla bolletta, per esempio UG-100234."
    ),
    "e_name.empty": "Non ho ricevuto nulla. Lo scriva come in bolletta, per esempio Maria Grazia o Rossi.",
    "e_name.digits": "Un nome o un cognome non contiene numeri. Lo scriva come in bolletta, per esempio D'Angelo.",
    "e_name.bad_chars": (
        "Ci sono caratteri non ammessi ({chars}). Usi lettere, spazi, apostrofi e trattini, per "
        "esempio Rossi-Bianchi."
    ),
    "e_name.too_short": "È troppo corto: almeno {min} caratteri. Per esempio Ugo o Re.",
    "e_name.too_long": (
        "È troppo lungo: al massimo {max} caratteri. Lo scriva come in bolletta, per esempio Maria Grazia."
    ),
    "e_name.too_few_letters": "Servono almeno {min} lettere. Per esempio Ugo o Re.",
    "e_company.empty": (
        "Non ho ricevuto la ragione sociale. La scriva come in bolletta, per esempio Rossi Impianti S.r.l."
    ),
    "e_company.bad_chars": (
        "La ragione sociale contiene caratteri non ammessi ({chars}). Per esempio: Rossi & Figli S.n.c."
    ),
    "e_company.too_short": (
        "La ragione sociale è troppo corta: almeno {min} caratteri. Per esempio Rossi Impianti S.r.l."
    ),
    "e_company.too_long": (
        "La ragione sociale è troppo lunga: al massimo {max} caratteri. La scriva come in bolletta, per "
        "esempio Rossi Impianti S.r.l."
    ),
    "e_company.no_letter": "La ragione sociale deve contenere delle lettere. Per esempio 3M Italia S.r.l.",
    "e_tax_code.empty": (
        "Non ho ricevuto il codice. Lo copi dalla bolletta, per esempio RSSMRA80A01H501U (codice "
        "fiscale) o 01234560017 (partita IVA)."
    ),
    "e_tax_code.bad_chars": (
        "Il codice contiene caratteri non ammessi ({chars}): solo lettere e numeri, per esempio "
        "RSSMRA80A01H501U (codice fiscale) o 01234560017 (partita IVA)."
    ),
    "e_tax_code.bad_length": (
        "Il codice fiscale ha 16 caratteri, quello scritto ne ha {length}. Per esempio RSSMRA80A01H501U."
    ),
    "e_tax_code.bad_length_business": (
        "La partita IVA ha 11 cifre (il codice fiscale 16 caratteri); quello scritto ne ha "
        "{length}. Per esempio 01234560017."
    ),
    "e_tax_code.bad_format": (
        "Il codice fiscale non ha la forma giusta: 6 lettere, 2 cifre, una lettera, 2 cifre, una "
        "lettera, 3 cifre e una lettera, come RSSMRA80A01H501U."
    ),
    "e_tax_code.bad_date": (
        "La data di nascita contenuta nel codice fiscale non è valida. Lo ricontrolli sulla "
        "bolletta (es. RSSMRA80A01H501U)."
    ),
    "e_tax_code.bad_checksum": (
        "L'ultimo carattere del codice fiscale non torna: probabilmente c'è un errore di battitura. "
        "Lo ricontrolli, per esempio RSSMRA80A01H501U."
    ),
    "e_tax_code.vat_for_person": (
        "Questa sembra una partita IVA: per una persona serve il codice fiscale di 16 caratteri, "
        "per esempio RSSMRA80A01H501U."
    ),
    "e_tax_code.vat_bad_format": (
        "Questa partita IVA non risulta valida: sono 11 cifre, per esempio 01234560017. La ricontrolli "
        "sulla bolletta."
    ),
    "e_tax_code.vat_bad_checksum": (
        "L'ultima cifra della partita IVA non torna: probabilmente c'è un errore di battitura. Per "
        "esempio 01234560017."
    ),
    "e_phone.empty": "Non ho ricevuto il numero. Lo scriva, per esempio 347 123 4567, oppure scriva «salta».",
    "e_phone.bad_chars": (
        "Il numero contiene caratteri non ammessi ({chars}). Per esempio +39 347 123 4567, oppure «salta»."
    ),
    "e_phone.invalid": (
        "Questo non sembra un numero di telefono valido. Per esempio 347 123 4567 oppure 06 1234 "
        "5678; o scriva «salta»."
    ),
    "e_phone.not_personal": (
        "Questo è un numero verde o a pagamento, non il suo. Scriva il suo cellulare o fisso, per "
        "esempio 347 123 4567, oppure «salta»."
    ),
    "e_phone.not_own": (
        "Questo non è il suo numero. Condivida il suo contatto, scriva il numero (es. 347 123 4567) "
        "o «salta»."
    ),
    "e_email.empty": "Non ho ricevuto l'indirizzo e-mail. Per esempio mario.rossi@example.it.",
    "e_email.too_long": (
        "L'indirizzo e-mail è troppo lungo: al massimo {max} caratteri. Per esempio mario.rossi@example.it."
    ),
    "e_email.no_at": "Manca la chiocciola (@). Un indirizzo e-mail è fatto così: mario.rossi@example.it.",
    "e_email.spaces": "Un indirizzo e-mail non contiene spazi. Per esempio mario.rossi@example.it.",
    "e_email.bad_domain": "La parte dopo la @ non è valida. Per esempio mario.rossi@example.it.",
    "e_email.invalid": "Questo non è un indirizzo e-mail valido. Per esempio mario.rossi@example.it.",
    "e_password.too_short": (
        "La password è troppo corta: servono almeno {min} caratteri. Per esempio una frase come "
        "«Sole sul lago 2024»."
    ),
    "e_password.too_long": (
        "La password è troppo lunga: al massimo {max} caratteri. Basta una frase breve, come "
        "«Sole sul lago 2024»."
    ),
    "e_password.too_many_bytes": (
        "La password è troppo lunga: emoji e caratteri speciali contano di più. La accorci un po', "
        "per esempio «Sole sul lago 2024»."
    ),
    "e_password.control_chars": (
        "La password contiene caratteri invisibili (per esempio un a capo). Usi lettere, numeri, "
        "spazi e simboli, per "
        "esempio «Sole sul lago 2024»."
    ),
    "e_password.common": (
        "Questa password è tra le più usate e facili da indovinare. Ne scelga un'altra, per esempio "
        "una frase come «Sole sul lago 2024»."
    ),
    "e_password.personal": (
        "La password non deve contenere i suoi dati (nome, codici, e-mail). Ne scelga un'altra, per "
        "esempio «Sole sul lago 2024»."
    ),
    "e_question.empty": "Non ho ricevuto la domanda. Per esempio: Come si chiamava il mio primo gatto?",
    "e_question.too_short": (
        "La domanda è troppo corta: almeno {min} caratteri. Per esempio: Come si chiamava il mio primo gatto?"
    ),
    "e_question.too_long": (
        "La domanda è troppo lunga: al massimo {max} caratteri. Per esempio: Come si chiamava il mio "
        "primo gatto?"
    ),
    "e_question.too_few_letters": (
        "La domanda deve contenere delle parole. Per esempio: Come si chiamava il mio primo gatto?"
    ),
    "e_question.control_chars": (
        "La domanda contiene caratteri invisibili. Usi lettere, numeri, spazi e punteggiatura, per "
        "esempio: Come si chiamava il mio primo gatto?"
    ),
    "e_answer.empty": "Non ho ricevuto la risposta. La scriva, per esempio «Briciola».",
    "e_answer.too_short": "La risposta è troppo corta: almeno {min} caratteri. Per esempio «Briciola».",
    "e_answer.too_long": "La risposta è troppo lunga: al massimo {max} caratteri. Per esempio «Briciola».",
    "e_answer.too_many_bytes": "La risposta è troppo lunga: emoji e caratteri speciali contano di più. La accorci, per esempio «Briciola».",
    "e_answer.in_question": (
        "La risposta non deve comparire nella domanda, altrimenti chiunque potrebbe indovinarla. Ne "
        "scelga un'altra: per esempio, alla domanda «Come si chiamava il mio primo gatto?» la "
        "risposta «Briciola»."
    ),
    "e_answer.control_chars": (
        "La risposta contiene caratteri invisibili o non validi. Usi lettere, numeri e spazi, per "
        "esempio «Briciola»."
    ),
    "e_kind.unknown": "Scelga uno dei pulsanti oppure scriva «persona» o «azienda».",
    "e_choice.unknown": "Scelga uno dei pulsanti qui sotto.",
    # --- login, profile, recovery ---
    "q_login_email": "Qual è l'<b>indirizzo e-mail</b> del suo profilo?\nPer esempio: mario.rossi@example.it",
    "h_login_email": "È l'indirizzo scelto durante la registrazione. Se non ha ancora un profilo, usi /registrati.",
    "q_login_password": "Scriva la <b>password</b>. Per sicurezza cancellerò subito il suo messaggio.",
    "h_login_password": (
        "È la password scelta durante la registrazione. Se non la ricorda, scriva /annulla e poi /recupera_password."
    ),
    "login_invalid": (
        "E-mail o password non validi. Riscriva la password per {email}, oppure usi /indietro per correggere "
        "l'e-mail. Se non ricorda la password, scriva /annulla e poi /recupera_password."
    ),
    "login_wait": (
        "Troppi tentativi di accesso non riusciti: per sicurezza l'accesso è sospeso. Riprovi tra {minutes} min. "
        "Se non ricorda la password, usi /recupera_password."
    ),
    "login_ok": (
        "Accesso effettuato. Salve, {name}!\n/profilo mostra i dati del suo profilo, /esci chiude l'accesso."
    ),
    "login_already": "Ha già effettuato l'accesso con {email}. Per entrare con un altro profilo, prima usi /esci.",
    "profile": "<b>Il suo profilo</b>\n\n{lines}\n\nPer chiudere l'accesso: /esci",
    "profile_not_logged_in": "Non ha effettuato l'accesso. Per vedere il profilo, entri prima con /accedi.",
    "label_holder": "Intestatario",
    "label_registered": "Registrato il",
    "logout_ok": "L'accesso all'area clienti è stato chiuso. Per rientrare usi /accedi.",
    "logout_not_logged_in": (
        "Non ha effettuato l'accesso, quindi non c'è nulla da chiudere. Per entrare usi /accedi."
    ),
    "rec_intro": (
        "Impostiamo una nuova password. Le chiederò l'e-mail del profilo, il codice cliente della bolletta e "
        "la risposta alla sua domanda di sicurezza. Può interrompere in ogni momento con /annulla."
    ),
    "q_rec_email": "Qual è l'<b>indirizzo e-mail</b> del suo profilo?\nPer esempio: mario.rossi@example.it",
    "h_rec_email": "È l'indirizzo che usa per accedere all'area clienti, scelto durante la registrazione.",
    "q_rec_customer_code": (
        "Qual è il suo <b>codice cliente</b>? Lo trova sulla prima pagina della bolletta "
        "(per esempio UG-100234)."
    ),
    "h_rec_customer_code": "Il codice cliente è stampato sulla bolletta come NIC, CE o COD.CLIENTE.",
    "rec_no_match": (
        "Con questi dati non posso procedere. Controlli l'e-mail del profilo e il codice cliente sulla "
        "bolletta (per esempio UG-100234): ricominciamo dall'e-mail. Tentativi rimasti: {left}."
    ),
    "rec_too_many": (
        "Troppi tentativi non riusciti: per sicurezza non posso continuare. Riprovi tra {minutes} min "
        "oppure contatti il servizio clienti Unogas."
    ),
    "rec_question": "La sua domanda di sicurezza è:\n<b>{question}</b>",
    "q_rec_answer": "Scriva la <b>risposta</b>. Per sicurezza cancellerò subito il suo messaggio.",
    "h_rec_answer": "La risposta è quella data durante la registrazione; maiuscole, accenti e spazi non contano.",
    "rec_wrong_answer": "La risposta non è corretta. Tentativi rimasti: {left}.",
    "rec_locked": (
        "Per sicurezza il recupero della password di questo profilo è sospeso dopo troppe risposte errate. "
        "Riprovi tra {minutes} min oppure contatti il servizio clienti Unogas."
    ),
    "q_new_password": (
        "Scelga la <b>nuova password</b>: almeno 8 caratteri e senza i suoi dati personali, per esempio "
        "«Nuvole sul mare 2025». Cancellerò subito il suo messaggio."
    ),
    "h_new_password": (
        "La password deve avere da 8 a 64 caratteri, non essere tra le più comuni e non contenere i suoi "
        "dati."
    ),
    "q_new_password_repeat": "Scriva di nuovo la <b>nuova password</b>, per conferma.",
    "h_new_password_repeat": "Riscriva la stessa nuova password, per essere sicuri che non ci siano errori di battitura.",
    "rec_gone": "Questo profilo non esiste più. Per crearne uno nuovo usi /registrati.",
    "rec_done": (
        "La password è stata cambiata e gli accessi aperti con quella vecchia sono stati chiusi. "
        "Ora può accedere con /accedi."
    ),
}

EN: dict[str, str] = {
    "welcome": (
        "Welcome to the <b>Unogas</b> assistant.\n"
        "Here you can sign up for the customer area, log in and recover your password.\n\n"
        "/register – create your profile (keep a bill at hand)\n"
        "/login – log in with e-mail and password\n"
        "/recover – if you forgot your password\n"
        "/profile – your profile, once logged in\n"
        "/logout – end your session\n"
        "/help – how it works"
    ),
    "help": (
        "I ask one question at a time: answer with a message.\n"
        "To register you need the details on your bill: customer code, first name and surname "
        "(or company name) and tax code or VAT number.\n\n"
        "/register – create your profile\n"
        "/login – log in to the customer area\n"
        "/profile – see your profile\n"
        "/logout – log out of the customer area\n"
        "/recover – set a new password\n"
        "/back – go back to the previous question\n"
        "/cancel – stop what you are doing\n"
        "/language – change language"
    ),
    "progress": "<i>Step {step} of {total}</i>",
    "help_prefix": "ℹ️ {help}",
    "cancelled": "Cancelled: the details you entered so far have been deleted.",
    "nothing_to_cancel": "Nothing is in progress. Type /help to see what I can do.",
    "expired": (
        "For your security, the details you entered were deleted after {minutes} minutes of inactivity. "
        "You can start again whenever you like."
    ),
    "busy_other_flow": "Please finish what you are doing first, or stop it with /cancel.",
    "text_only": "I can only read text messages.",
    "unknown_command": "I don't know that command. Type /help for the list of commands.",
    "already_first": "This is the first question.",
    "too_many_invalid": "This question seems to be giving you trouble. You can try again, start over or cancel.",
    "stale_button": "This button is no longer active.",
    "error_generic": "Something went wrong. Please repeat your last answer.",
    "db_unavailable": "The service is temporarily unavailable. Please try again in a few minutes.",
    "slow_down": (
        "I received too many messages in a row and could not read some of the latest ones. "
        "Please wait for my reply before writing again, then repeat what is missing."
    ),
    "hash_wait": (
        "Too many attempts in a short time: for your security this message was not processed. "
        "Please wait {seconds} s, then send it again. Your answers so far are kept."
    ),
    "group_redirect": "To protect your data, registration and login only happen in a private chat with me.",
    "language_set": "From now on I will write to you in English. If you were answering a question, please go on.",
    "language_choose": "Which language would you like me to use?",
    "btn_person": "Person",
    "btn_business": "Business",
    "btn_skip": "Skip",
    "btn_save": "Save",
    "btn_cancel": "Cancel",
    "btn_restart": "Start over",
    "btn_continue": "Continue",
    "btn_share_phone": "Share my number",
    "btn_open_private": "Continue in private",
    "btn_edit": "Change: {label}",
    "reg_intro": (
        "Let's sign you up for the customer area. Keep a bill at hand: I will ask for details printed on it. "
        "You can stop at any time with /cancel."
    ),
    "q_customer_code": (
        "What is your <b>customer code</b>?\n"
        "You find it on the first page of your bill, under «NIC/CE/COD.CLIENTE» (for example UG-100234)."
    ),
    "q_kind": "Is the contract in the name of a <b>person</b> or a <b>business</b>?",
    "q_first_name": "What is your <b>first name</b>, as shown in the heading of your bill?",
    "q_last_name": "And your <b>surname</b>, as shown on your bill?",
    "q_company_name": (
        "What is the <b>company name</b>, as shown in the heading of your bill?\n"
        "For example: Rossi Impianti S.r.l."
    ),
    "q_tax_code_person": (
        "What is your <b>tax code</b> (codice fiscale)?\n"
        "It is on your bill, in the customer details (16 characters, for example RSSMRA80A01H501U)."
    ),
    "q_tax_code_business": (
        "What is the company's <b>VAT number</b> (partita IVA)?\n"
        "It is on your bill, in the customer details (11 digits, for example 01234560017). "
        "A sole trader may give the owner's tax code instead."
    ),
    "q_phone": (
        "What is your <b>phone number</b>? It is optional: if you prefer not to give it, type «skip».\n"
        "For example: +39 347 123 4567"
    ),
    "q_email": (
        "Now choose your login details. Which <b>e-mail address</b> do you want to use as your user ID?\n"
        "For example: mario.rossi@example.it"
    ),
    "q_password": (
        "Choose a <b>password</b>: at least 8 characters, ideally a phrase that is easy to remember and "
        "hard to guess. Do not use your personal details.\nFor your security I will delete your message at once."
    ),
    "q_password_repeat": "Type the <b>password</b> again to confirm it.",
    "q_question": (
        "Write a <b>security question</b> only you can answer: it will be used if you forget your password.\n"
        "For example: What was the name of my first cat?"
    ),
    "q_answer": "What is the <b>answer</b> to that question? I will delete your message at once.",
    "q_answer_repeat": "Type the <b>answer</b> again to confirm it.",
    "h_customer_code": (
        "The customer code identifies your contract. It is printed on the first page of your bill as NIC, CE "
        "or COD.CLIENTE: letters, digits and the signs - or /."
    ),
    "h_kind": "Choose «Person» if the bill is in your name, «Business» if it is in the name of a company or body.",
    "h_first_name": "Type your first name exactly as on the bill; if you have more than one, type them all.",
    "h_last_name": "Type your surname exactly as on the bill.",
    "h_company_name": "Type the company name as on the bill, with its legal form (S.r.l., S.p.A.…).",
    "h_tax_code_person": "The tax code has 16 letters and digits; it is also on your health card.",
    "h_tax_code_business": "The VAT number has 11 digits and is printed on the bill under the company name.",
    "h_phone": "The number is only used to contact you if needed. Type «skip» not to give it.",
    "h_email": "Your e-mail address will be your user ID for the customer area.",
    "h_password": "The password must have 8 to 64 characters. Do not use common passwords or your name.",
    "h_password_repeat": "Type the same password again, to rule out typing mistakes.",
    "h_question": "The question is shown to you if you forget your password. Choose something that does not change.",
    "h_answer": "The answer ignores capitals, accents and spaces. It must not appear in the question.",
    "h_answer_repeat": "Type the same answer again.",
    "h_summary": "Check your details: «Save» creates the profile, «Cancel» deletes everything.",
    "verifying": "Thank you. I am checking your details against your bill…",
    "verified": "Your details match those on the bill.",
    "mismatch": (
        "These details do not match any of our customers. Check them on your bill and try again: "
        "we start over from the customer code. Attempts left: {left}."
    ),
    "verify_locked": (
        "Too many failed attempts. For your security I cannot check more details for now: "
        "try again in an hour or contact Unogas customer service."
    ),
    "already_registered": (
        "This customer already has a profile in the customer area. You can log in with /login or, "
        "if you forgot your password, use /recover."
    ),
    "email_taken": "This e-mail address is already used by another profile. Please give another one.",
    "email_taken_too_often": (
        "For your security I cannot check more e-mail addresses for now: too many were already used by other "
        "profiles. Try again in an hour with /register or contact Unogas customer service."
    ),
    "password_mismatch": "The two passwords do not match. Please choose your password again.",
    "answer_mismatch": "The two answers do not match. Please type the answer again.",
    "secret_expired": "For your security I need to ask you for this again.",
    "summary": (
        "Here is a summary of your details:\n\n{lines}\n\n"
        "Password and security answer are not shown. Press «Save» to create your profile."
    ),
    "summary_line": "{label}: <b>{value}</b>",
    "phone_none": "not given",
    "kind_person": "person",
    "kind_business": "business",
    "label_customer_code": "Customer code",
    "label_kind": "Account holder",
    "label_first_name": "First name",
    "label_last_name": "Surname",
    "label_company_name": "Company name",
    "label_tax_code": "Tax code / VAT no.",
    "label_phone": "Phone",
    "label_email": "E-mail",
    "label_password": "Password",
    "label_question": "Security question",
    "label_answer": "Answer",
    "saved": (
        "Le informazioni relative al proprio profilo sono state correttamente salvate.\n"
        "(Your profile has been saved.)\n\n"
        "You can now log in to the customer area with /login, using the e-mail {email} and your password."
    ),
    "save_conflict_customer": "Meanwhile a profile was created for this customer. You can log in with /login.",
    "customer_gone": "This customer code is no longer among our customers, so I cannot create the profile. Please contact Unogas customer service.",
    "save_conflict_email": "Meanwhile this e-mail address was taken by another profile. Please choose another.",
    "press_save": "Press «Save» to create your profile or «Cancel». You can also change a detail.",
    "edit_which": "Which detail do you want to change?",
    "console_banner": (
        "unogas-bot terminal mode: type as in a chat, one message per line. Buttons are numbered: type the "
        "number or the label. /contact NUMBER shares a phone number; /quit leaves."
    ),
    "console_deleted": "(your message was deleted for your security)",
    "cmd_register": "Sign up for the customer area",
    "cmd_login": "Log in with e-mail and password",
    "cmd_recover": "Recover your password",
    "cmd_profile": "Your profile",
    "cmd_logout": "Log out of the customer area",
    "cmd_cancel": "Cancel what is in progress",
    "cmd_help": "How it works",
    "cmd_language": "Change language",
    "ph_customer_code": "e.g. UG-100234",
    "ph_first_name": "e.g. Mario",
    "ph_last_name": "e.g. Rossi",
    "ph_company_name": "e.g. Rossi Impianti S.r.l.",
    "ph_tax_code": "e.g. RSSMRA80A01H501U",
    "ph_phone": "e.g. 347 123 4567",
    "ph_email": "e.g. mario.rossi@example.it",
    "ph_question": "e.g. My first cat's name?",
    "ph_secret": "deleted at once",
    "ph_repeat": "again, to confirm",
    # --- answers that break a rule (validation.REASONS) ----------------------------------------------
    "e_customer_code.empty": "I did not get the customer code. Type it as printed, for example UG-100234.",
    "e_customer_code.bad_chars": (
        "The customer code has characters that are not allowed ({chars}): use only letters, digits, "
        "- and /. For example UG-100234."
    ),
    "e_customer_code.too_short": (
        "The customer code is too short: it has at least {min} characters. For example UG-100234."
    ),
    "e_customer_code.too_long": (
        "The customer code is too long: at most {max} characters. For example UG-100234."
    ),
    "e_customer_code.no_digit": (
        "The customer code always contains digits. Copy it from your bill, for example UG-100234."
    ),
    "e_name.empty": "I did not get anything. Type it as on the bill, for example Maria Grazia or Rossi.",
    "e_name.digits": "A name or surname has no digits. Type it as on the bill, for example D'Angelo.",
    "e_name.bad_chars": (
        "There are characters that are not allowed ({chars}). Use letters, spaces, apostrophes and "
        "hyphens, for example Rossi-Bianchi."
    ),
    "e_name.too_short": "That is too short: at least {min} characters. For example Ugo or Re.",
    "e_name.too_long": (
        "That is too long: at most {max} characters. Type it as on the bill, for example Maria Grazia."
    ),
    "e_name.too_few_letters": "It needs at least {min} letters. For example Ugo or Re.",
    "e_company.empty": (
        "I did not get the company name. Type it as on the bill, for example Rossi Impianti S.r.l."
    ),
    "e_company.bad_chars": (
        "The company name has characters that are not allowed ({chars}). For example: Rossi & Figli S.n.c."
    ),
    "e_company.too_short": (
        "The company name is too short: at least {min} characters. For example Rossi Impianti S.r.l."
    ),
    "e_company.too_long": (
        "The company name is too long: at most {max} characters. Type it as on the bill, for example "
        "Rossi Impianti S.r.l."
    ),
    "e_company.no_letter": "The company name must contain letters. For example 3M Italia S.r.l.",
    "e_tax_code.empty": (
        "I did not get the code. Copy it from your bill, for example RSSMRA80A01H501U (tax code) or "
        "01234560017 (VAT number)."
    ),
    "e_tax_code.bad_chars": (
        "The code has characters that are not allowed ({chars}): only letters and digits, for "
        "example RSSMRA80A01H501U (tax code) or 01234560017 (VAT number)."
    ),
    "e_tax_code.bad_length": (
        "The tax code has 16 characters, the one you typed has {length}. For example RSSMRA80A01H501U."
    ),
    "e_tax_code.bad_length_business": (
        "The VAT number has 11 digits (a tax code 16 characters); the one you typed has {length}. "
        "For example 01234560017."
    ),
    "e_tax_code.bad_format": (
        "The tax code does not have the right shape: 6 letters, 2 digits, a letter, 2 digits, a "
        "letter, 3 digits and a letter, like RSSMRA80A01H501U."
    ),
    "e_tax_code.bad_date": (
        "The date of birth inside the tax code is not valid. Check it on your bill (e.g. RSSMRA80A01H501U)."
    ),
    "e_tax_code.bad_checksum": (
        "The last character of the tax code does not add up: probably a typing mistake. Check it, "
        "for example RSSMRA80A01H501U."
    ),
    "e_tax_code.vat_for_person": (
        "This looks like a VAT number: a person needs the 16-character tax code, for example "
        "RSSMRA80A01H501U."
    ),
    "e_tax_code.vat_bad_format": (
        "This VAT number is not valid: it has 11 digits, for example 01234560017. Please check it on "
        "your bill."
    ),
    "e_tax_code.vat_bad_checksum": (
        "The last digit of the VAT number does not add up: probably a typing mistake. For example "
        "01234560017."
    ),
    "e_phone.empty": "I did not get the number. Type it, for example +39 347 123 4567, or type «skip».",
    "e_phone.bad_chars": (
        "The number has characters that are not allowed ({chars}). For example +39 347 123 4567, or «skip»."
    ),
    "e_phone.invalid": (
        "This does not look like a valid phone number. For example +39 347 123 4567; or type «skip»."
    ),
    "e_phone.not_personal": (
        "This is a toll-free or premium-rate number, not yours. Type your mobile or landline, for "
        "example 347 123 4567, or «skip»."
    ),
    "e_phone.not_own": (
        "This is not your own number. Share your own contact, type the number (e.g. +39 347 123 "
        "4567) or «skip»."
    ),
    "e_email.empty": "I did not get the e-mail address. For example mario.rossi@example.it.",
    "e_email.too_long": (
        "The e-mail address is too long: at most {max} characters. For example mario.rossi@example.it."
    ),
    "e_email.no_at": "The @ sign is missing. An e-mail address looks like this: mario.rossi@example.it.",
    "e_email.spaces": "An e-mail address has no spaces. For example mario.rossi@example.it.",
    "e_email.bad_domain": "The part after the @ is not valid. For example mario.rossi@example.it.",
    "e_email.invalid": "This is not a valid e-mail address. For example mario.rossi@example.it.",
    "e_password.too_short": (
        "The password is too short: at least {min} characters. For example a phrase such as «Sun on "
        "the lake 2024»."
    ),
    "e_password.too_long": (
        "The password is too long: at most {max} characters. A short phrase will do, such as "
        "«Sun on the lake 2024»."
    ),
    "e_password.too_many_bytes": (
        "The password is too long: emoji and special characters count more. Shorten it a little, "
        "for example «Sun on the lake 2024»."
    ),
    "e_password.control_chars": (
        "The password contains invisible characters (a line break, for example). Use letters, digits, "
        "spaces and symbols, for "
        "example «Sun on the lake 2024»."
    ),
    "e_password.common": (
        "This password is among the most used and easiest to guess. Choose another, for example a "
        "phrase such as «Sun on the lake 2024»."
    ),
    "e_password.personal": (
        "The password must not contain your details (name, codes, e-mail). Choose another, for "
        "example «Sun on the lake 2024»."
    ),
    "e_question.empty": "I did not get the question. For example: What was the name of my first cat?",
    "e_question.too_short": (
        "The question is too short: at least {min} characters. For example: What was the name of my "
        "first cat?"
    ),
    "e_question.too_long": (
        "The question is too long: at most {max} characters. For example: What was the name of my first cat?"
    ),
    "e_question.too_few_letters": (
        "The question must contain words. For example: What was the name of my first cat?"
    ),
    "e_question.control_chars": (
        "The question contains invisible characters. Use letters, digits, spaces and punctuation, for "
        "example: What was the name of my first cat?"
    ),
    "e_answer.empty": "I did not get the answer. Type it, for example «Crumble».",
    "e_answer.too_short": "The answer is too short: at least {min} characters. For example «Crumble».",
    "e_answer.too_long": "The answer is too long: at most {max} characters. For example «Crumble».",
    "e_answer.too_many_bytes": "The answer is too long: emoji and special characters count more. Shorten it, for example «Crumble».",
    "e_answer.in_question": (
        "The answer must not appear in the question, or anyone could guess it. Choose another: for "
        "example, to the question «What was the name of my first cat?» the answer «Crumble»."
    ),
    "e_answer.control_chars": (
        "The answer contains invisible or broken characters. Use letters, digits and spaces, for "
        "example «Crumble»."
    ),
    "e_kind.unknown": "Choose one of the buttons or type «person» or «business».",
    "e_choice.unknown": "Choose one of the buttons below.",
    # --- login, profile, recovery ---
    "q_login_email": "What is the <b>e-mail address</b> of your profile?\nFor example: mario.rossi@example.it",
    "h_login_email": "It is the address you chose when you registered. If you have no profile yet, use /register.",
    "q_login_password": "Type your <b>password</b>. For your security I will delete your message at once.",
    "h_login_password": (
        "It is the password you chose when you registered. If you do not remember it, type /cancel and then /recover."
    ),
    "login_invalid": (
        "E-mail or password not valid. Type the password for {email} again, or use /back to correct the "
        "e-mail. If you do not remember your password, type /cancel and then /recover."
    ),
    "login_wait": (
        "Too many failed login attempts: for your security logging in is suspended. Try again in {minutes} min. "
        "If you do not remember your password, use /recover."
    ),
    "login_ok": "You are logged in. Hello, {name}!\n/profile shows your profile, /logout ends the session.",
    "login_already": "You are already logged in as {email}. To use another profile, first use /logout.",
    "profile": "<b>Your profile</b>\n\n{lines}\n\nTo log out: /logout",
    "profile_not_logged_in": "You are not logged in. To see your profile, first log in with /login.",
    "label_holder": "Account holder",
    "label_registered": "Registered on",
    "logout_ok": "You have logged out of the customer area. To log in again use /login.",
    "logout_not_logged_in": "You are not logged in, so there is nothing to log out of. To log in use /login.",
    "rec_intro": (
        "Let's set a new password. I will ask for your profile's e-mail, the customer code on your bill and "
        "the answer to your security question. You can stop at any time with /cancel."
    ),
    "q_rec_email": "What is the <b>e-mail address</b> of your profile?\nFor example: mario.rossi@example.it",
    "h_rec_email": "It is the address you use to log in to the customer area, chosen when you registered.",
    "q_rec_customer_code": (
        "What is your <b>customer code</b>? You find it on the first page of your bill (for example UG-100234)."
    ),
    "h_rec_customer_code": "The customer code is printed on your bill as NIC, CE or COD.CLIENTE.",
    "rec_no_match": (
        "I cannot go on with these details. Check your profile's e-mail and the customer code on your bill "
        "(for example UG-100234): we start again from the e-mail. Attempts left: {left}."
    ),
    "rec_too_many": (
        "Too many failed attempts: for your security I cannot go on. Try again in {minutes} min or contact "
        "Unogas customer service."
    ),
    "rec_question": "Your security question is:\n<b>{question}</b>",
    "q_rec_answer": "Type the <b>answer</b>. For your security I will delete your message at once.",
    "h_rec_answer": "It is the answer you gave when you registered; capitals, accents and spaces do not matter.",
    "rec_wrong_answer": "The answer is not correct. Attempts left: {left}.",
    "rec_locked": (
        "For your security, password recovery for this profile is suspended after too many wrong answers. "
        "Try again in {minutes} min or contact Unogas customer service."
    ),
    "q_new_password": (
        "Choose your <b>new password</b>: at least 8 characters and without your personal details, for "
        "example «Clouds over the sea 2025». I will delete your message at once."
    ),
    "h_new_password": (
        "The password must have 8 to 64 characters, not be a common one and not contain your details."
    ),
    "q_new_password_repeat": "Type the <b>new password</b> again to confirm it.",
    "h_new_password_repeat": "Type the same new password again, to rule out typing mistakes.",
    "rec_gone": "This profile no longer exists. To create a new one use /register.",
    "rec_done": (
        "Your password has been changed and the sessions opened with the old one have been closed. "
        "You can now log in with /login."
    ),
}

CATALOGUE: dict[str, dict[str, str]] = {"it": IT, "en": EN}


class Raw(str):
    """A parameter that is already HTML (built from catalogue texts) and must not be escaped again."""

    __slots__ = ()


def t(lang: str, key: str, **params: object) -> str:
    """The message `key` in `lang` (Italian when unknown), with HTML-escaped parameters."""
    table = CATALOGUE.get(lang, IT)
    template = table.get(key) or IT[key]
    if not params:
        return template
    safe = {k: v if isinstance(v, Raw) else html.escape(str(v), quote=False) for k, v in params.items()}
    return template.format(**safe)


def placeholders(template: str) -> set[str]:
    """The `{names}` a template uses; a test checks both languages agree."""
    return {name for _, name, _, _ in Formatter().parse(template) if name}


def language_for(code: str | None) -> str:
    """Pick the catalogue language from a Telegram `language_code` (e.g. "en-GB"): Italian by default."""
    if code and code.lower().split("-")[0] == "en":
        return "en"
    return DEFAULT_LANGUAGE
