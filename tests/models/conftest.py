"""Fixtures for the models tests: tiny random models, the real default models, parallel text."""

from __future__ import annotations

from pathlib import Path

import pytest

from optical.models.encoder import Encoder
from optical.models.registry import prepare_model
from optical.models.tiny import make_tiny_model

# Eight sentences, each written in eight languages (same order in every language).
PARALLEL = {
    "en": [
        "The cat is sleeping on the warm windowsill.",
        "I need to buy bread and milk at the market tomorrow.",
        "The train to the airport leaves every twenty minutes.",
        "My grandmother planted tomatoes in her garden this spring.",
        "The football match was cancelled because of heavy rain.",
        "Doctors recommend drinking plenty of water every day.",
        "The library is closed on Sundays and public holidays.",
        "We watched the stars from the top of the mountain.",
    ],
    "el": [
        "Η γάτα κοιμάται στο ζεστό περβάζι του παραθύρου.",
        "Πρέπει να αγοράσω ψωμί και γάλα στην αγορά αύριο.",
        "Το τρένο για το αεροδρόμιο αναχωρεί κάθε είκοσι λεπτά.",
        "Η γιαγιά μου φύτεψε ντομάτες στον κήπο της αυτή την άνοιξη.",
        "Ο ποδοσφαιρικός αγώνας ακυρώθηκε λόγω της έντονης βροχής.",
        "Οι γιατροί συνιστούν να πίνουμε άφθονο νερό κάθε μέρα.",
        "Η βιβλιοθήκη είναι κλειστή τις Κυριακές και τις αργίες.",
        "Παρακολουθήσαμε τα αστέρια από την κορυφή του βουνού.",
    ],
    "th": [
        "แมวกำลังนอนหลับอยู่บนขอบหน้าต่างที่อบอุ่น",
        "พรุ่งนี้ฉันต้องซื้อขนมปังและนมที่ตลาด",
        "รถไฟไปสนามบินออกทุกยี่สิบนาที",
        "ยายของฉันปลูกมะเขือเทศในสวนของเธอเมื่อฤดูใบไม้ผลินี้",
        "การแข่งขันฟุตบอลถูกยกเลิกเพราะฝนตกหนัก",
        "แพทย์แนะนำให้ดื่มน้ำมาก ๆ ทุกวัน",
        "ห้องสมุดปิดทุกวันอาทิตย์และวันหยุดนักขัตฤกษ์",
        "เราดูดาวจากยอดเขา",
    ],
    "hi": [
        "बिल्ली गर्म खिड़की की चौखट पर सो रही है।",
        "मुझे कल बाज़ार से रोटी और दूध खरीदना है।",
        "हवाई अड्डे के लिए ट्रेन हर बीस मिनट में निकलती है।",
        "मेरी दादी ने इस वसंत में अपने बगीचे में टमाटर लगाए।",
        "भारी बारिश के कारण फुटबॉल मैच रद्द कर दिया गया।",
        "डॉक्टर हर दिन खूब पानी पीने की सलाह देते हैं।",
        "पुस्तकालय रविवार और सार्वजनिक छुट्टियों पर बंद रहता है।",
        "हमने पहाड़ की चोटी से तारे देखे।",
    ],
    "tr": [
        "Kedi sıcak pencere pervazında uyuyor.",
        "Yarın pazardan ekmek ve süt almam gerekiyor.",
        "Havalimanına giden tren her yirmi dakikada bir kalkıyor.",
        "Büyükannem bu bahar bahçesine domates dikti.",
        "Futbol maçı şiddetli yağmur nedeniyle iptal edildi.",
        "Doktorlar her gün bol su içmeyi öneriyor.",
        "Kütüphane pazar günleri ve resmi tatillerde kapalıdır.",
        "Dağın tepesinden yıldızları izledik.",
    ],
    "vi": [
        "Con mèo đang ngủ trên bậu cửa sổ ấm áp.",
        "Ngày mai tôi cần mua bánh mì và sữa ở chợ.",
        "Tàu đi sân bay khởi hành cứ hai mươi phút một chuyến.",
        "Bà tôi đã trồng cà chua trong vườn vào mùa xuân này.",
        "Trận bóng đá đã bị hủy vì mưa lớn.",
        "Các bác sĩ khuyên nên uống nhiều nước mỗi ngày.",
        "Thư viện đóng cửa vào Chủ nhật và các ngày lễ.",
        "Chúng tôi ngắm sao từ đỉnh núi.",
    ],
    "ar": [
        "القطة نائمة على حافة النافذة الدافئة.",
        "أحتاج إلى شراء الخبز والحليب من السوق غدًا.",
        "يغادر القطار المتجه إلى المطار كل عشرين دقيقة.",
        "زرعت جدتي الطماطم في حديقتها هذا الربيع.",
        "أُلغيت مباراة كرة القدم بسبب الأمطار الغزيرة.",
        "يوصي الأطباء بشرب الكثير من الماء كل يوم.",
        "المكتبة مغلقة أيام الأحد والعطلات الرسمية.",
        "شاهدنا النجوم من قمة الجبل.",
    ],
    "zh": [
        "猫正在温暖的窗台上睡觉。",
        "我明天需要去市场买面包和牛奶。",
        "去机场的火车每二十分钟发一班。",
        "我奶奶今年春天在她的花园里种了西红柿。",
        "足球比赛因大雨被取消了。",
        "医生建议每天多喝水。",
        "图书馆在星期日和公共假日闭馆。",
        "我们从山顶上看星星。",
    ],
}

TINY_CORPUS_LANGUAGES = ("de", "el", "th", "hi", "tr", "vi", "ar", "zh")


@pytest.fixture(scope="session")
def tiny_corpus(mirror_dir: Path) -> list[str]:
    """Both sides of the first 40 NTREX pairs per language (not the reserved FLORES devtest)."""
    lines: list[str] = []
    for lang in TINY_CORPUS_LANGUAGES:
        with open(mirror_dir / "bitext" / "ntrex128" / f"en-{lang}.tsv", encoding="utf-8") as handle:
            for _, line in zip(range(40), handle):
                lines.extend(line.rstrip("\n").split("\t"))
    return lines


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_corpus: list[str]) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model", corpus=tiny_corpus)


@pytest.fixture(scope="session")
def e5_dir() -> Path:
    return prepare_model("multilingual-e5-small")


@pytest.fixture(scope="session")
def e5_encoder(e5_dir: Path) -> Encoder:
    return Encoder.load("multilingual-e5-small")
