"""Writes `xquad-{dev,test}-{en,ru}.jsonl`: two-turn dialogues over the XQuAD dev and test
splits (one table each) whose second question refers back to the first by a pronoun or an
ellipsis.

Turn 1 is an XQuAD question that names the subject; turn 2 is another question of the same
article with the subject replaced by hand (below, English and Russian, Russian gender and case
agreed with the noun it stands for), so its gold paragraph and answers are XQuAD's. A few pairs
are XQuAD's own follow-ups ("When was this edict declared?"), kept as written.

    python -m docassist.evals.dialogues.make [--evaldata DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from docassist.evals.datasets import EVALDATA, read_jsonl

HERE = Path(__file__).parent
# (article, turn-1 question id, turn-2 question id, English follow-up, Russian follow-up); ids are
# XQuAD's without the language suffix; None keeps XQuAD's own question, which already refers back
DIALOGUES: list[tuple[str, str, str, str | None, str | None]] = [
    (
        "Huguenot",
        "f920",
        "6c03",
        "For how long did they continue to use French names?",
        "До каких пор они продолжали использовать французские имена?",
    ),
    (
        "Huguenot",
        "6c50",
        "6c51",
        "What German poet was descended from them?",
        "Какой немецкий поэт является их потомком?",
    ),
    ("Huguenot", "f91d", "f91e", None, None),
    ("Huguenot", "6bd6", "6bd8", None, None),
    (
        "Huguenot",
        "6b3a",
        "6b3b",
        "In what area of this colony were their land grants?",
        "В какой области этой колонии они получили земельные наделы?",
    ),
    ("1973_oil_crisis", "80fe", "80ff", None, None),
    ("Apollo_program", "d185", "d186", "When was it established?", "Когда он был учрежден?"),
    (
        "Apollo_program",
        "d6bd",
        "d6c0",
        "What other location did it test at besides Kennedy Space Center?",
        "Где помимо Космического центра имени Кеннеди проводились его испытания?",
    ),
    (
        "Apollo_program",
        "ce02",
        "ce04",
        "What happened to the crew onboard during it?",
        "Что случилось с экипажем на борту во время этих испытаний?",
    ),
    (
        "Apollo_program",
        "cefa",
        "cefb",
        "Were they able to have color added to them to enhance the picture or did they remain black and white?",
        "Были ли они восстановлены в цвете для улучшения качества изображения или остались черно-белыми?",
    ),
    (
        "European_Union_law",
        "d5bd",
        "d5be",
        "In 1972, did Norway end up joining it?",
        "Вступила ли Норвегия в него в 1972 году?",
    ),
    ("European_Union_law", "70bc", "cb20", "When did that case take place?", "Когда происходил этот процесс?"),
    (
        "European_Union_law",
        "8ba0",
        "8ba1",
        "What other entity was established at the same time as it?",
        "Какой еще орган был создан одновременно с ней?",
    ),
    (
        "European_Union_law",
        "78dd",
        "78de",
        "When did the UK formally subscribe to it?",
        "Когда Великобритания официально его подписала?",
    ),
    (
        "Amazon_rainforest",
        "9f00",
        "9f02",
        "How many species of trees can be found in it?",
        "Сколько видов деревьев можно встретить в них?",
    ),
    (
        "Amazon_rainforest",
        "5188",
        "519c",
        "How many metric tons of carbon are believed to be stored in it?",
        "Сколько тонн углерода, как полагают, содержится в нём?",
    ),
    ("Amazon_rainforest", "96b7", "96b8", "What did creating them lead to?", "К чему привело их создание?"),
    ("Ctenophora", "bd91", "8076", "What are the hairs on them called?", "Как называются волоски на них?"),
    ("Ctenophora", "cced", "e39c", "Why are they extremely rare as fossils?", "Почему их окаменелости крайне редки?"),
    ("Ctenophora", "c5ef", "c5f1", "What do they use to capture their prey?", "Чем они пользуются при ловле добычи?"),
    (
        "Fresno,_California",
        "ce9f",
        "cea2",
        "What are the two principal Asian-American groups living in that neighborhood?",
        "Какие две основные азиатско-американские группы населения проживают в этом районе?",
    ),
    (
        "Fresno,_California",
        "ced7",
        "ced9",
        "Between which two streets along it were wealthy African-Americans at one time residing?",
        "Между какими двумя улицами вдоль него когда-то проживали богатые афроамериканцы?",
    ),
    (
        "Black_Death",
        "dbaf",
        "dbb1",
        "How and when did its first variant enter Europe?",
        "Как и когда её первый вид проник в Европу?",
    ),
    (
        "Black_Death",
        "c301",
        "c303",
        "How long did it last in the Ottoman empire?",
        "Сколько она присутствовала в Османской империи?",
    ),
    ("Black_Death", "dc69", "dc6c", "When was its last outbreak?", "Когда была её последняя вспышка?"),
    ("Geology", "7526", "7528", None, None),
    (
        "Geology",
        "c8bf",
        "c8c1",
        "He published a 2 volume version of his theories in what year?",
        "В каком году он опубликовал двухтомную версию своих теорий?",
    ),
    (
        "American_Broadcasting_Company",
        "dae6",
        "dae4",
        "Who was hired to produce its 2001-02 identity?",
        "Кто был нанят для разработки её идентичности 2001-02?",
    ),
    (
        "American_Broadcasting_Company",
        "86c0",
        "86c2",
        "Where is that jingle still in use?",
        "Где все еще используется эта мелодия?",
    ),
    (
        "American_Broadcasting_Company",
        "db52",
        "db54",
        "How much money was to go to DuMont Television Network under his merger plan?",
        "Сколько денег должна была получить DuMont Television Network согласно его плану слияния?",
    ),
    (
        "Genghis_Khan",
        "e6cc",
        "8c35",
        "Who kidnapped his first wife soon after they were married?",
        "Кто похитил его первую жену вскоре после их женитьбы?",
    ),
    (
        "Genghis_Khan",
        "e6ce",
        "8c37",
        "What was the name of his wife Börte's first son?",
        "Как звали первого сына его жены Бортэ?",
    ),
    (
        "Genghis_Khan",
        "f48d",
        "f48f",
        "When was it returned to the Lord's Enclosure in Mongolia?",
        "Когда он был возвращен в кенотаф в Монголии?",
    ),
    ("Genghis_Khan", "99fa", "8863", "Which of his descendants sacked Baghdad?", "Какой его потомок разграбил Багдад?"),
    (
        "Civil_disobedience",
        "00ea",
        "00ec",
        "What type of it is larger scale?",
        "Какой его тип имеет более крупный масштаб?",
    ),
    (
        "Civil_disobedience",
        "da35",
        "4f19",
        "It was written to protest against what?",
        "В качестве протеста против чего она была написана?",
    ),
    (
        "Construction",
        "9a03",
        "9a05",
        "It used data on what to rank Top 400 firms as heavy contractors?",
        "По каким сегментам рынка он использовал данные, чтобы расположить 400 самых крупных компаний по объему "
        "исполненных ими работ?",
    ),
    ("Harvard_University", "ed41", "9860", "What UN secretary went there?", "Кто из секретарей ООН посетил его?"),
    (
        "Harvard_University",
        "9578",
        "9862",
        "Who is the Costa Rican President that went there?",
        "Кто из президентов Коста-Рики посещал его?",
    ),
    (
        "Doctor_Who",
        "f0a6",
        "f0a8",
        "What type of beings does he usually take with him on his travels?",
        "Каких существ он обычно берет с собой в путешествие?",
    ),
    (
        "Doctor_Who",
        "f35b",
        "f35f",
        "In what episode did he acknowledge having had a brother?",
        "В какой серии он признал, что у него есть брат?",
    ),
    (
        "Doctor_Who",
        "9dec",
        "9dee",
        "In what episode did he play a music conductor?",
        "В какой серии он сыграл роль дирижера?",
    ),
    (
        "Intergovernmental_Panel_on_Climate_Change",
        "919e",
        "81a6",
        "What did it apologize for?",
        "За что она извинилась?",
    ),
    ("Islamism", "cf14", "cf17", "Who was he a critic of?", "Что он критиковал?"),
    ("Islamism", "89db", "89dd", "What did it proclaim itself in 2014?", "Чем оно себя провозгласило в 2014 году?"),
    (
        "Imperialism",
        "216b",
        "216d",
        "He and Halford Mackinder were what kind of geographers?",
        "В какой географической дисциплине прославились он и Хэлфорд Маккиндер?",
    ),
    (
        "Imperialism",
        "cf29",
        "cf2c",
        "When did French Republicans back building its empire?",
        "Когда французские республиканцы поддержали расширение её империи?",
    ),
    (
        "Chloroplast",
        "940d",
        "940f",
        "How do both of their membranes compare to cyanobacterium's original double membranes?",
        "Как обе их мембраны сравниваются с оригинальными двойными мембранами цианобактерии?",
    ),
    ("Economic_inequality", "8693", "a78e", "How does it prevent growth?", "Каким образом оно препятствует росту?"),
]


# The same, over the XQuAD test split (report only; nothing is tuned on these)
TEST_DIALOGUES: list[tuple[str, str, str, str | None, str | None]] = [
    (
        "Super_Bowl_50",
        "92bd",
        "82de",
        "How many different teams did he take to the Super Bowl?",
        "Сколько различных команд он довёл до Суперкубка?",
    ),
    (
        "Super_Bowl_50",
        "92bf",
        "92c0",
        "What role does he currently have in the Broncos franchise?",
        "Какую роль он сейчас играет во франшизе Бронкос?",
    ),
    ("Super_Bowl_50", "92ab", "82c5", "And in the AFC Championship game?", "А в игре чемпионата АФК?"),
    ("Warsaw", "5f32", "5f35", "Where is its home venue located?", "Где находится её домашний стадион?"),
    ("Warsaw", "5c26", "5c27", "What brought it to a stop?", "Что заставило её прекратить работу?"),
    ("Normans", "2595", "2593", "What castle did they lend their name to?", "Какому замку они дали своё имя?"),
    (
        "Nikola_Tesla",
        "ebb7",
        "ebb9",
        "Where did he live for much of his life?",
        "Где он жил большую часть своей жизни?",
    ),
    ("Nikola_Tesla", "e021", "e022", "What did they finance?", "Что они финансировали?"),
    (
        "Teacher",
        "3eb3",
        "3eb5",
        "In what Western country is it still allowed?",
        "В какой из западных стран они всё ещё разрешены?",
    ),
    ("Teacher", "7180", "7181", "What is happening to their average age?", "Что происходит с их средним возрастом?"),
    (
        "Martin_Luther",
        "7391",
        "7392",
        "Who went to Wittenberg to hear him speak?",
        "Кто приезжал в Виттенберг, чтобы послушать его проповеди?",
    ),
    (
        "Martin_Luther",
        "6091",
        "6092",
        "Who translated it into English?",
        "Кто перевёл его на английский язык?",
    ),
    (
        "Southern_California",
        "77dc",
        "77df",
        "Besides automobiles, what else is it famous for using?",
        "Помимо автомобилей, использованием чего ещё она знаменита?",
    ),
    ("Southern_California", "9880", "9884", "When is it scheduled to return?", "Когда она должна вернуться в лигу?"),
    (
        "Sky_(United_Kingdom)",
        "40ba",
        "40bb",
        "What satellite was used for its launch?",
        "Какой спутник использовался при его запуске?",
    ),
    (
        "Sky_(United_Kingdom)",
        "41fe",
        "4200",
        "What were those proceedings about?",
        "Что было предметом этих исков?",
    ),
    ("Victoria_(Australia)", "5ccf", "5cd1", "What group can amend it?", "Какая группа может вносить в неё поправки?"),
    (
        "Victoria_(Australia)",
        "d544",
        "d545",
        "And when did Holden announce it would close its plant there?",
        "А когда компания Holden объявила о закрытии своего завода там?",
    ),
    ("Steam_engine", "4a94", "4a95", "How many cylinders does its engine have?", "Сколько цилиндров у её двигателя?"),
    (
        "Steam_engine",
        "55c3",
        "55c4",
        "In a steam turbine, what are they mounted on?",
        "На чём они установлены в паровой турбине?",
    ),
    ("Oxygen", "c0e2", "c0e3", "And Joseph Priestley?", "А Джозеф Пристли?"),
    (
        "Oxygen",
        "c134",
        "c136",
        "During what type of climate is it found in seawater at higher levels?",
        "Для какого климата характерен его повышенный уровень в морской воде?",
    ),
    ("Packet_switching", "8042", "8044", "What was its first network named?", "Как называлась его первая сеть?"),
    ("Packet_switching", "d7c3", "d7c4", "What did it originally do?", "Что он изначально выполнял?"),
    (
        "Newcastle_upon_Tyne",
        "72d7",
        "72d9",
        "How many guests attended the dinner celebrating its opening?",
        "Сколько гостей посетили ужин в честь его открытия?",
    ),
    (
        "Newcastle_upon_Tyne",
        "c8ab",
        "c8ac",
        "What year was their song Fog on the Tyne released?",
        "В каком году вышла их песня Fog on the Tyne?",
    ),
    ("Victoria_and_Albert_Museum", "7574", "7575", "What was it originally called?", "Как он изначально назывался?"),
    (
        "Victoria_and_Albert_Museum",
        "eed8",
        "eeda",
        "Why is it dominated by fashionable clothes made for special occasions?",
        "Почему в ней преобладает модная одежда для особых случаев?",
    ),
    ("Pharmacy", "8110", "8111", "What do they depend on more and more now?", "От чего они теперь всё больше зависят?"),
    ("Pharmacy", "f0da", "f0de", "What are they forbidden to do?", "Что им запрещается делать?"),
    ("Private_school", "f5d4", "f5d6", "How are they funded?", "Как они финансируются?"),
    ("Private_school", "dc36", "dc37", "And their fees?", "А плата за обучение в них?"),
    ("Jacksonville,_Florida", "954b", "954d", "In which county is it?", "В каком округе он находится?"),
    (
        "Jacksonville,_Florida",
        "9c28",
        "9c29",
        "What was the colony renamed to after that attack?",
        "Как переименовали колонию после этого нападения?",
    ),
    ("University_of_Chicago", "48e3", "48e4", "Who helped design them?", "Кто помогал его проектировать?"),
    (
        "University_of_Chicago",
        "4902",
        "4903",
        "What public policy school found its home in that building?",
        "Какой факультет публичной политики разместился в этом здании?",
    ),
    ("Yuan_dynasty", "f9e6", "f9e7", "Who did he appoint as grand chancellor?", "Кого он назначил великим канцлером?"),
    ("Yuan_dynasty", "a335", "a336", "And when?", "А когда?"),
    ("Kenya", "9fcf", "9fd0", "What does that scale measure?", "Что измеряет эта шкала?"),
    (
        "Kenya",
        "a11f",
        "a122",
        "What countries do they compete with in long-distance running?",
        "С какими странами они соперничают в беге на длинные дистанции?",
    ),
    ("Prime_number", "83a5", "83a6", "And another one?", "А ещё один такой алгоритм?"),
    (
        "Prime_number",
        "5019",
        "5018",
        "What does it mean for one to be considered indecomposable?",
        "Что значит, что он считается неразложимым?",
    ),
    ("Rhine", "c5ed", "6f02", "What is it known for?", "Чем оно славится?"),
    ("Rhine", "8669", "866a", "Where does it begin?", "Где она начинается?"),
    (
        "Rhine",
        "7064",
        "7065",
        "After that, who would be forbidden to enter it?",
        "Кому после этого был бы запрещён вход в неё?",
    ),
    (
        "Scottish_Parliament",
        "6cf6",
        "6cf9",
        "Where might they meet outside of Parliament?",
        "Где, кроме парламента, они могут собираться?",
    ),
    (
        "Scottish_Parliament",
        "8329",
        "832b",
        "How did the attempt to establish it go in 1979?",
        "Чем закончилась попытка создать её в 1979 году?",
    ),
    ("United_Methodist_Church", "61f6", "61f7", "And where?", "А где?"),
    (
        "United_Methodist_Church",
        "cfb3",
        "cfb5",
        "What does it use in the sacrament of Holy Communion?",
        "Что она использует для таинства Святого Причастия?",
    ),
]
TABLES = {"dev": DIALOGUES, "test": TEST_DIALOGUES}


def build(evaldata: Path, lang: str, split: str = "dev") -> list[dict]:
    rows = read_jsonl(evaldata, f"xquad_{lang}", split)
    by_tail = {(r["title"], r["id"].rsplit("-", 1)[0][-4:]): r for r in rows}
    out = []
    for article, first_id, second_id, en, ru in TABLES[split]:
        first, second = by_tail[(article, first_id)], by_tail[(article, second_id)]
        follow_up = {"en": en, "ru": ru}[lang] or second["question"].strip()
        out.append(
            {
                "id": second["id"],
                "article": article,
                "turn1": first["question"].strip(),
                "turn2": follow_up,
                "turn2_original": second["question"].strip(),
                "gold_context": second["context"],
                "gold_answers": [a["text"] for a in second["answers"]],
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--evaldata", type=Path, default=EVALDATA)
    args = parser.parse_args()
    for split, lang in ((s, lang) for s in TABLES for lang in ("en", "ru")):
        rows = build(args.evaldata, lang, split)
        path = HERE / f"xquad-{split}-{lang}.jsonl"
        with path.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{path}: {len(rows)} dialogues")


if __name__ == "__main__":
    main()
